/*
 * Attended mode (docs/consent.md "Asking the user"): `tierline-agent attend`,
 * and `help` when it stays on a terminal. A watch on the running agent's
 * control socket brings questions, grants and activity as JSON lines; each
 * question is asked on /dev/tty in turn and answered with approve or deny.
 * Everything from the events is shown escaped: it comes from the relay and
 * technicians.
 */
#include "agent/cmd/cmd_int.h"
#include "agent/cmd/commands.h"

#include "agent/control.h"
#include "agent/outbox.h"
#include "agent/ticket_news.h"
#include "proto/msg_tickets.h"
#include "proto/cli.h"
#include "proto/err.h"
#include "proto/text.h"
#include "proto/vocab.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t attend_stop;

static void attend_signal(int signum)
{
    (void)signum;
    attend_stop = 1;
}

struct attend {
    const char *path;
    const char *command; /* whose name the errors carry: attend or help */
    int status;          /* the exit status so far */
    int first;           /* the next line is the watch's answer, not an event */
    int tty;             /* /dev/tty, or -1 */
    json_t *queue;       /* questions not yet asked, oldest first */
    json_t *current;     /* the question on the terminal now */
    char answer[256];    /* what the user typed so far */
    size_t answer_len;
    const char *follow; /* `help`: the queued request whose ticket id to print */
    char *ticket;       /* where that ticket id goes */
    size_t ticket_size;
};

static void attend_prompt_next(struct attend *attend)
{
    if (attend->tty < 0 || attend->current != NULL || json_array_size(attend->queue) == 0)
        return;
    attend->current = json_incref(json_array_get(attend->queue, 0));
    json_array_remove(attend->queue, 0);
    attend->answer_len = 0;
    tl__cmd_print_question(attend->current);
    json_t *q = attend->current;
    if (json_is_string(json_object_get(q, "command_line")))
        printf("Run it? [y/N] ");
    else if (json_is_true(json_object_get(q, "ends_with_shell")))
        printf("Allow? [y/N/k] ");
    else if (json_is_true(json_object_get(q, "push")))
        printf("Allow? [y/N/p] ");
    else if (json_is_true(json_object_get(q, "each_possible")))
        printf("Allow? [y/N/e] ");
    else
        printf("Allow? [y/N] ");
    fflush(stdout);
}

/* Someone answered (here, elsewhere, or the timeout): forget the question. */
static void attend_settled(struct attend *attend, const char *id)
{
    size_t i;
    json_t *question;
    json_array_foreach(attend->queue, i, question) {
        if (strcmp(tl__cmd_member(question, "id"), id) == 0) {
            json_array_remove(attend->queue, i);
            break;
        }
    }
    if (attend->current != NULL && strcmp(tl__cmd_member(attend->current, "id"), id) == 0) {
        printf("\n");
        json_decref(attend->current);
        attend->current = NULL;
    }
}

/* yes: 0 no, 1 yes, 2 yes and ask for each command, 3 yes and keep it after the shell ends,
 * 4 yes to copying files from the machine only. */
static void attend_answer(struct attend *attend, int yes)
{
    json_t *question = attend->current;
    const char *id = tl__cmd_member(question, "id");
    json_t *request =
        json_pack("{s:s, s:s}", "cmd",
                  tl_control_type_name(yes ? TL_CONTROL_APPROVE : TL_CONTROL_DENY), "id", id);
    if (yes == 2)
        json_object_set_new(request, "each", json_true());
    if (yes == 3)
        json_object_set_new(request, "keep", json_true());
    if (yes == 4)
        json_object_set_new(request, "pull_only", json_true());
    json_t *answer = NULL;
    int rc = tl_control_call(attend->path, request, 10000, &answer);
    json_decref(request);
    if (rc != 0 || !json_is_true(json_object_get(answer, "ok"))) {
        const char *message = json_string_value(json_object_get(answer, "message"));
        char shown_id[SHOWN_MAX], why[SHOWN_MAX];
        tl_text_clip(shown_id, sizeof shown_id, id, 0, TL_TEXT_LINE);
        tl_text_clip(why, sizeof why, message ? message : tl_strerror(rc), 0, TL_TEXT_LINE);
        printf("Could not answer %s: %s\n", shown_id, why);
    }
    json_decref(answer);
    attend->current = NULL;
    json_decref(question);
}

/* A grant was made: by the user, the unattended policy, or an existing grant. */
static void attend_granted(struct attend *attend, json_t *event)
{
    char scopes[128], until[64];
    char id[SHOWN_MAX], technician[SHOWN_MAX], role[SHOWN_MAX], ticket[SHOWN_MAX];
    json_t *grant = json_object_get(event, "grant");
    if (json_is_string(json_object_get(event, "question")))
        attend_settled(attend, tl__cmd_member(event, "question"));
    tl__cmd_scopes_text(json_object_get(grant, "scopes"), scopes, sizeof scopes);
    tl__cmd_local_time_text(tl__cmd_int_of(grant, "expires_ms"), until, sizeof until);
    printf("Granted %s to %s (%s): %s on ticket %s until %s (%s)\n",
           tl__cmd_shown(id, sizeof id, grant, "id"),
           tl__cmd_shown(technician, sizeof technician, grant, "technician"),
           tl__cmd_shown(role, sizeof role, grant, "role"), scopes,
           tl__cmd_shown(ticket, sizeof ticket, grant, "ticket"), until,
           strcmp(tl__cmd_member(event, "by"), "policy") == 0     ? "by the unattended policy"
           : strcmp(tl__cmd_member(event, "by"), "existing") == 0 ? "an existing grant"
                                                                  : "by you");
}

/* A queued request reached the relay; the one `help` follows has its id printed alone. */
static void attend_delivered(struct attend *attend, json_t *event)
{
    char id[SHOWN_MAX], ticket[SHOWN_MAX];
    const char *request = tl__cmd_member(event, "request");
    tl__cmd_shown(ticket, sizeof ticket, event, "ticket");
    if (attend->follow != NULL && strcmp(request, attend->follow) == 0) {
        /* The id alone on stdout, as when `help` is answered at once. */
        if (attend->ticket != NULL && attend->ticket[0] == '\0') {
            snprintf(attend->ticket, attend->ticket_size, "%s", ticket);
            printf("%s\n", ticket);
            fflush(stdout);
            fprintf(stderr, "Ticket %s opened with this machine's diagnostics attached.\n", ticket);
        }
    } else {
        printf("Request %s delivered: ticket %s\n", tl__cmd_shown(id, sizeof id, event, "request"),
               ticket);
    }
}

/* News of one of the user's tickets (agent/ticket_news.h), as the desktop shows it. */
static void attend_ticket(json_t *event)
{
    tl_ticket_summary_t ticket;
    if (tl_msg_ticket_summary_decode(json_object_get(event, "ticket"), &ticket) != 0)
        return;
    unsigned what = 0;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(event, "what"), i, item) {
        const char *name = json_string_value(item);
        what |= name == NULL                  ? 0
                : strcmp(name, "note") == 0   ? TL_NEWS_NOTE
                : strcmp(name, "status") == 0 ? TL_NEWS_STATUS
                                              : 0;
    }
    char summary[512], body[4096], hint[128];
    tl_ticket_news_text(&ticket, what, summary, sizeof summary, body, sizeof body, hint,
                        sizeof hint);
    printf("Ticket news: %s\n  ", summary);
    for (const char *at = body; *at != '\0'; at++)
        printf(*at == '\n' ? "\n  " : "%c", *at);
    printf("\n  (%s)\n", hint);
}

static void attend_event(struct attend *attend, json_t *event)
{
    const char *kind = tl__cmd_member(event, "event");
    /* Everything from the events is shown escaped: it comes from the relay and technicians. */
    char id[SHOWN_MAX], technician[SHOWN_MAX], ticket[SHOWN_MAX], text[SHOWN_MAX];
    switch (tl_control_type_lookup(kind)) {
    case TL_CONTROL_EVENT_QUESTION:
        if (attend->tty < 0) {
            tl__cmd_print_question(event);
            tl__cmd_shown(id, sizeof id, event, "id");
            printf("  answer: " PROGRAM " approve %s  |  " PROGRAM " deny %s\n", id, id);
        } else if (json_array_size(attend->queue) < TL_CONSENT_MAX_PENDING) {
            json_array_append(attend->queue, event);
        }
        break;
    case TL_CONTROL_EVENT_GRANTED:
        attend_granted(attend, event);
        break;
    case TL_CONTROL_EVENT_DENIED:
        if (json_is_string(json_object_get(event, "question")))
            attend_settled(attend, tl__cmd_member(event, "question"));
        printf("Not granted: %s on ticket %s: %s\n",
               tl__cmd_shown(technician, sizeof technician, event, "technician"),
               tl__cmd_shown(ticket, sizeof ticket, event, "ticket"),
               tl__cmd_shown(text, sizeof text, event, "reason"));
        break;
    case TL_CONTROL_EVENT_ACTIVITY:
        printf("  [%s] %s\n", tl__cmd_shown(id, sizeof id, event, "grant"),
               tl__cmd_shown(text, sizeof text, event, "text"));
        break;
    case TL_CONTROL_EVENT_ENDED:
        printf("Grant %s (%s, ticket %s) ended: %s\n", tl__cmd_shown(id, sizeof id, event, "grant"),
               tl__cmd_shown(technician, sizeof technician, event, "technician"),
               tl__cmd_shown(ticket, sizeof ticket, event, "ticket"),
               tl__cmd_shown(text, sizeof text, event, "reason"));
        break;
    case TL_CONTROL_EVENT_DELIVERED:
        attend_delivered(attend, event);
        break;
    case TL_CONTROL_EVENT_TICKET:
        attend_ticket(event);
        break;
    case TL_CONTROL_EVENT_COMMAND: {
        const char *decision = tl__cmd_member(event, "decision");
        char line[TL_CONSENT_MAX_COMMAND_TEXT];
        if (json_is_string(json_object_get(event, "question")))
            attend_settled(attend, tl__cmd_member(event, "question"));
        tl_text_clip(line, sizeof line, tl__cmd_member(event, "command_line"), 0, TL_TEXT_LINE);
        printf("Command %s%s: %s (%s, ticket %s)\n",
               strcmp(decision, "allowed") == 0      ? "allowed"
               : strcmp(decision, "unanswered") == 0 ? "not run, nobody answered"
               : strcmp(decision, "withdrawn") == 0  ? "withdrawn"
                                                     : "declined",
               strcmp(tl__cmd_member(event, "by"), "policy") == 0 ? " by the unattended policy"
                                                                  : "",
               line, tl__cmd_shown(technician, sizeof technician, event, "technician"),
               tl__cmd_shown(ticket, sizeof ticket, event, "ticket"));
        break;
    }
    case TL_CONTROL_EVENT_SET_ASIDE:
        printf("Request %s was set aside and will not be sent: %s (see " PROGRAM " status)\n",
               tl__cmd_shown(id, sizeof id, event, "request"),
               tl__cmd_shown(text, sizeof text, event, "message"));
        break;
    default:
        break;
    }
    fflush(stdout);
}

/* Reads what the user typed; answers the current question at the end of a line. */
static void attend_read_tty(struct attend *attend)
{
    char buf[256];
    ssize_t n = read(attend->tty, buf, sizeof buf);
    if (n <= 0) {
        /* The terminal is gone (Ctrl-D, hang-up): go on showing events only. */
        close(attend->tty);
        attend->tty = -1;
        printf("\nNo more answers from this terminal; use " PROGRAM " approve/deny.\n");
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] != '\n') {
            if (attend->answer_len < sizeof attend->answer - 1)
                attend->answer[attend->answer_len++] = buf[i];
            continue;
        }
        attend->answer[attend->answer_len] = '\0';
        if (attend->current != NULL) {
            const char *text = attend->answer;
            json_t *q = attend->current;
            int yes = strcasecmp(text, "y") == 0 || strcasecmp(text, "yes") == 0;
            /* The other answers only where the question offers them; anything else is no. */
            if (json_is_true(json_object_get(q, "each_possible")) &&
                (strcasecmp(text, "e") == 0 || strcasecmp(text, "each") == 0))
                yes = 2;
            if (json_is_true(json_object_get(q, "ends_with_shell")) &&
                (strcasecmp(text, "k") == 0 || strcasecmp(text, "keep") == 0))
                yes = 3;
            if (json_is_true(json_object_get(q, "push")) &&
                (strcasecmp(text, "p") == 0 || strcasecmp(text, "pull") == 0))
                yes = 4;
            attend_answer(attend, yes);
        }
        attend->answer_len = 0;
        attend_prompt_next(attend);
    }
}

static int connect_watch(const char *path, const char *follow)
{
    char watch[128];
    const char *cmd = tl_control_type_name(TL_CONTROL_WATCH);
    int len = follow != NULL ? snprintf(watch, sizeof watch,
                                        "{\"cmd\":\"%s\",\"request\":\"%s\"}\n", cmd, follow)
                             : snprintf(watch, sizeof watch, "{\"cmd\":\"%s\"}\n", cmd);
    if (len <= 0 || len >= (int)sizeof watch || (follow != NULL && !tl_outbox_id_valid(follow)))
        return TL_EINVAL;
    int fd = tl_control_connect(path);
    if (fd < 0)
        return fd;
    if (send(fd, watch, (size_t)len, MSG_NOSIGNAL) != (ssize_t)len) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* Handles the whole lines in buf[0..*used): the watch's answer first, then events. */
static void attend_lines(struct attend *attend, char *buf, size_t *used)
{
    char *newline;
    while ((newline = memchr(buf, '\n', *used)) != NULL) {
        json_error_t error;
        json_t *event = json_loadb(buf, (size_t)(newline - buf), 0, &error);
        if (attend->first) {
            attend->first = 0;
            if (!json_is_true(json_object_get(event, "ok"))) {
                char why[SHOWN_MAX];
                fprintf(stderr, PROGRAM " %s: the agent refused to show events: %s\n",
                        attend->command, tl__cmd_shown(why, sizeof why, event, "message"));
                attend->status = TL_EXIT_FAILURE;
                attend_stop = 1;
            }
        } else if (event != NULL) {
            attend_event(attend, event);
        }
        json_decref(event);
        *used -= (size_t)(newline - buf) + 1;
        memmove(buf, newline + 1, *used);
    }
    if (*used == TL_CONTROL_MAX_LINE)
        *used = 0; /* a line too long to be ours: drop it */
}

/* Events from the watch on fd and answers from the terminal, until Ctrl-C or the agent stops. */
static void attend_wait(struct attend *attend, int fd, char *buf)
{
    size_t used = 0;
    while (buf != NULL && !attend_stop) {
        struct pollfd fds[2] = {{.fd = fd, .events = POLLIN},
                                {.fd = attend->tty, .events = POLLIN}};
        int ready = poll(fds, attend->tty >= 0 ? 2 : 1, -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            attend->status = tl__cmd_fail(attend->command, "waiting for events", -errno);
            break;
        }
        if (attend->tty >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
            attend_read_tty(attend);
        if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = recv(fd, buf + used, TL_CONTROL_MAX_LINE - used, 0);
        if (n <= 0) {
            printf("\nThe agent stopped.\n");
            attend->status = TL_EXIT_FAILURE;
            break;
        }
        used += (size_t)n;
        attend_lines(attend, buf, &used);
        attend_prompt_next(attend);
    }
}

int tl__cmd_attend_loop(const char *command, const char *path, const char *follow, char *ticket,
                        size_t ticket_size)
{
    struct attend attend = {.path = path,
                            .command = command,
                            .status = TL_EXIT_OK,
                            .first = 1,
                            .tty = -1,
                            .follow = follow,
                            .ticket = ticket,
                            .ticket_size = ticket_size};
    char *buf = NULL;
    int fd = connect_watch(path, follow);
    if (fd == -ENOENT || fd == -ECONNREFUSED) {
        fprintf(stderr, PROGRAM " %s: the agent is not running (start it with: " PROGRAM " run)\n",
                command);
        attend.status = TL_EXIT_FAILURE;
        goto out;
    }
    if (fd < 0) {
        attend.status = tl__cmd_fail(command, "connecting to the agent", fd);
        goto out;
    }
    attend.queue = json_array();
    attend.tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    struct sigaction action = {.sa_handler = attend_signal}, old_int, old_term;
    sigemptyset(&action.sa_mask);
    attend_stop = 0;
    sigaction(SIGINT, &action, &old_int);
    sigaction(SIGTERM, &action, &old_term);
    if (attend.tty >= 0)
        printf("Attending: technicians' requests will be asked here (Ctrl-C to leave).\n");
    else
        printf("No terminal: showing requests only; answer them with " PROGRAM
               " approve Q-N or " PROGRAM " deny Q-N.\n");
    fflush(stdout);
    buf = malloc(TL_CONTROL_MAX_LINE);
    attend_wait(&attend, fd, buf);
    if (attend_stop && attend.status == TL_EXIT_OK)
        printf("\nLeft attended mode. Open questions wait for " PROGRAM
               " approve/deny or their timeout.\n");
    fflush(stdout);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
out:
    free(buf);
    json_decref(attend.current);
    json_decref(attend.queue);
    if (attend.tty >= 0)
        close(attend.tty);
    if (fd >= 0)
        close(fd);
    return attend.status;
}

int tl_agent_cmd_attend(int argc, char **argv)
{
    const char *dir = NULL, *positional[1];
    int count;
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {0}};
    int status = tl_cli_parse(PROGRAM, "attend", "attend [--state DIR]", argc, argv, 1, options,
                              positional, 0, &count);
    char path[TL_STATE_PATH_MAX];
    if (status != 0 || (status = tl__cmd_control_socket("attend", dir, path, sizeof path)) != 0)
        goto out;
    status = tl__cmd_attend_loop("attend", path, NULL, NULL, 0);
out:
    return status;
}
