/*
 * Knowledge-base matching on the agent (docs/kb.md "Matching"): how long `tierline-agent help`
 * takes to rank ARTICLES articles against one diagnostics report and a description. The
 * articles are the shipped ones of kb/, copied under new ids until there are that many, so
 * their conditions are real ones; the report is a labelled case of
 * tests/fixtures/kb/match_cases.json on which several articles hold.
 *
 *     tierline-bench-kb --kb DIR --cases FILE [--articles N] [--runs N]
 *
 * Prints a Markdown section: the time to parse the articles and the median and slowest time
 * of one ranking, against the target of 200 ms for 500 articles.
 */
#include "proto/article.h"
#include "proto/kbmatch.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *kb = NULL, *cases = NULL;
    long articles = 500, runs = 50;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--kb") == 0)
            kb = argv[i + 1];
        else if (strcmp(argv[i], "--cases") == 0)
            cases = argv[i + 1];
        else if (strcmp(argv[i], "--articles") == 0)
            articles = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = strtol(argv[i + 1], NULL, 10);
    }
    if (kb == NULL || cases == NULL || articles < 1 || articles > 100000 || runs < 1 ||
        runs > 10000) {
        fprintf(stderr, "usage: tierline-bench-kb --kb DIR --cases FILE [--articles N] "
                        "[--runs N]\n");
        return 2;
    }
    /* The shipped articles' texts. */
    char *texts[64];
    size_t lens[64], shipped = 0;
    DIR *d = opendir(kb);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL && shipped < 64) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".md") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", kb, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            continue;
        texts[shipped] = malloc(TL_ARTICLE_TEXT_MAX + 1);
        lens[shipped] = fread(texts[shipped], 1, TL_ARTICLE_TEXT_MAX, f);
        fclose(f);
        shipped++;
    }
    if (d != NULL)
        closedir(d);
    if (shipped == 0) {
        fprintf(stderr, "tierline-bench-kb: no articles in %s\n", kb);
        return 1;
    }
    /* Copies under new ids ("tmp-full-17"), parsed as the agent parses its catalogue. */
    tl_article_t **list = calloc((size_t)articles, sizeof *list);
    double parse_start = now_ms();
    for (long i = 0; i < articles; i++) {
        const char *text = texts[i % (long)shipped];
        size_t len = lens[i % (long)shipped];
        const char *id = strstr(text, "\nid: ") + 5;
        size_t id_len = strcspn(id, "\n");
        char *copy = malloc(len + 16);
        size_t head = (size_t)(id - text) + id_len;
        int extra = sprintf(copy + head, "-%ld", i);
        memcpy(copy, text, head);
        memcpy(copy + head + extra, text + head, len - head);
        char why[400];
        if (tl_article_parse("bench.md", copy, len + (size_t)extra, &list[i], why, sizeof why) !=
            0) {
            fprintf(stderr, "tierline-bench-kb: %s\n", why);
            return 1;
        }
        free(copy);
    }
    double parse_ms = now_ms() - parse_start;
    json_t *fixture = json_load_file(cases, 0, NULL);
    json_t *c = json_array_get(json_object_get(fixture, "cases"), 17); /* m18: three hold */
    const json_t *report = json_object_get(c, "report");
    const char *description = json_string_value(json_object_get(c, "description"));
    if (!json_is_object(report) || description == NULL) {
        fprintf(stderr, "tierline-bench-kb: %s has no case m18\n", cases);
        return 1;
    }
    double *times = calloc((size_t)runs, sizeof *times);
    tl_kb_match_t *top = calloc(10, sizeof *top);
    size_t found = 0;
    for (long r = 0; r < runs; r++) {
        double start = now_ms();
        if (tl_kb_rank((const tl_article_t *const *)list, (size_t)articles, report, description,
                       top, 10, &found) != 0)
            return 1;
        times[r] = now_ms() - start;
    }
    qsort(times, (size_t)runs, sizeof *times, by_value);
    printf("## Knowledge-base matching\n\n");
    printf("`tierline-bench-kb`: %ld articles (the %zu shipped ones of `kb/` under new ids) "
           "ranked against one report on which several hold and a user's description, %ld "
           "times, on one core. Target: 500 articles in under 200 ms on the agent.\n\n",
           articles, shipped, runs);
    printf("| articles | parse all | rank: median | rank: slowest | matches |\n");
    printf("|---:|---:|---:|---:|---:|\n");
    printf("| %ld | %.1f ms | %.2f ms | %.2f ms | %zu shown of the best 10 |\n", articles, parse_ms,
           times[runs / 2], times[runs - 1], found);
    printf("\nThere is no OpenSSH counterpart: the anchor is the target above.\n");
    for (long i = 0; i < articles; i++)
        tl_article_free(list[i]);
    for (size_t i = 0; i < shipped; i++)
        free(texts[i]);
    free(list);
    free(times);
    free(top);
    json_decref(fixture);
    return 0;
}
