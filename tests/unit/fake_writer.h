/*
 * A storage writer for tests (agent/storage.h's write_file hook): it records
 * every text it is asked to write and on which thread, can be held (writes
 * wait until the test releases them, at most 10 s) and can be told to fail.
 * When not failing it writes the file for real.
 */
#ifndef TL_FAKE_WRITER_H
#define TL_FAKE_WRITER_H

#include "agent/storage.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAKE_MAX_WRITES 32

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int hold;      /* writes wait while this is set */
    int fail;      /* a negative code to return instead of writing */
    int started;   /* writes that began */
    int finished;  /* writes that returned */
    int timed_out; /* a held write gave up waiting */
    char *texts[FAKE_MAX_WRITES];
    pthread_t threads[FAKE_MAX_WRITES];
} fake = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};

static int fake_write(const char *path, const void *data, size_t len)
{
    pthread_mutex_lock(&fake.lock);
    int n = fake.started++;
    if (n < FAKE_MAX_WRITES) {
        fake.texts[n] = malloc(len + 1);
        if (fake.texts[n] != NULL) {
            memcpy(fake.texts[n], data, len);
            fake.texts[n][len] = '\0';
        }
        fake.threads[n] = pthread_self();
    }
    pthread_cond_broadcast(&fake.changed);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    while (fake.hold && !fake.timed_out)
        if (pthread_cond_timedwait(&fake.changed, &fake.lock, &deadline) != 0)
            fake.timed_out = 1;
    int rc = fake.fail;
    pthread_mutex_unlock(&fake.lock);
    if (rc == 0)
        rc = tl_storage_write_file(path, data, len);
    pthread_mutex_lock(&fake.lock);
    fake.finished++;
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

static int fake_get(const int *field)
{
    pthread_mutex_lock(&fake.lock);
    int value = *field;
    pthread_mutex_unlock(&fake.lock);
    return value;
}

static void fake_set_hold(int hold)
{
    pthread_mutex_lock(&fake.lock);
    fake.hold = hold;
    pthread_cond_broadcast(&fake.changed);
    pthread_mutex_unlock(&fake.lock);
}

static void fake_reset(void)
{
    pthread_mutex_lock(&fake.lock);
    for (int i = 0; i < FAKE_MAX_WRITES; i++) {
        free(fake.texts[i]);
        fake.texts[i] = NULL;
    }
    fake.hold = fake.fail = fake.started = fake.finished = fake.timed_out = 0;
    pthread_mutex_unlock(&fake.lock);
}

static const tl_storage_config_t fake_config = {fake_write};

#endif
