/*
 * Classification of a ticket: the user's words, the proposal and its precedence, and the rules
 * as docs/desk.md "Classification and severity" shows them. The diagnostics' rules are in
 * classify_diag.c.
 */
#include "relay/desk/classify_int.h"

#include "proto/err.h"
#include "proto/hash.h"
#include "proto/text.h"
#include "proto/vocab.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

_Static_assert(TL_CATEGORY_COUNT == TL_CATEGORY_NAMES, "one name per category");

const char *tl_classify_category_name(enum tl_category category)
{
    return tl_category_name((int)category);
}

int tl_classify_category_parse(const char *name, enum tl_category *category)
{
    int i = tl_category_index(name);
    if (i < 0)
        return TL_EINVAL;
    *category = (enum tl_category)i;
    return 0;
}

int tl_classify_severity_parse(const char *text, int *severity)
{
    if (text == NULL || (text[0] != 'S' && text[0] != 's') || text[1] < '1' || text[1] > '4' ||
        text[2] != '\0')
        return TL_EINVAL;
    *severity = text[1] - '0';
    return 0;
}

static void set_why(char *why, size_t why_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t why_size, const char *format, ...)
{
    if (why == NULL || why_size == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(why, why_size, format, args);
    va_end(args);
}

/*
 * A citation line from parts that are already escaped (escaping them again changes nothing):
 * formatted whole, then clipped to TL_CLASSIFY_LINE_SIZE bytes so that no UTF-8 sequence is
 * cut. The parts are bounded so that they fit; the clip is the guarantee.
 */
static void line_format(char out[TL_CLASSIFY_LINE_SIZE], const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void line_format(char out[TL_CLASSIFY_LINE_SIZE], const char *format, ...)
{
    char whole[4 * TL_CLASSIFY_LINE_SIZE];
    va_list args;
    va_start(args, format);
    vsnprintf(whole, sizeof whole, format, args);
    va_end(args);
    tl_text_clip(out, TL_CLASSIFY_LINE_SIZE, whole, 0, TL_TEXT_LINE);
}

/* --- words ---------------------------------------------------------------------------------- */

static bool ascii_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Bytes of the non-ASCII characters that separate words as a blank does: quotes, dashes, the
 * ellipsis, the no-break space, guillemets. 0 if text[i] does not start one. */
static size_t separator_length(const unsigned char *text, size_t len, size_t i)
{
    if (text[i] == 0xe2 && i + 2 < len && text[i + 1] == 0x80) {
        switch (text[i + 2]) {
        case 0x93: /* en dash */
        case 0x94: /* em dash */
        case 0x98: /* left single quote */
        case 0x99: /* right single quote, the typographic apostrophe */
        case 0x9c: /* left double quote */
        case 0x9d: /* right double quote */
        case 0xa6: /* ellipsis */
            return 3;
        default:
            return 0;
        }
    }
    if (text[i] == 0xc2 && i + 1 < len &&
        (text[i + 1] == 0xa0 || text[i + 1] == 0xab || text[i + 1] == 0xbb))
        return 2;
    return 0;
}

static bool breaks_sentence(unsigned char c)
{
    return c == '.' || c == '!' || c == '?' || c == ';' || c == ':' || c == '\n' || c == '\r';
}

static bool same_word(const char *text, size_t len, const char *lower)
{
    size_t i = 0;
    for (; i < len && lower[i] != '\0'; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)lower[i])
            return false;
    }
    return i == len && lower[i] == '\0';
}

static int push_word(struct tl__words *words, const struct tl__word *word)
{
    if (words->count == words->cap) {
        size_t cap = words->cap ? words->cap * 2 : 64;
        struct tl__word *items = realloc(words->items, cap * sizeof *items);
        if (items == NULL)
            return TL_ENOMEM;
        words->items = items;
        words->cap = cap;
    }
    words->items[words->count++] = *word;
    return 0;
}

/* "cant", "dont", ...: written without the apostrophe; the two letters cut before "not". */
static const char *const joined_negations[] = {
    "cant",   "dont",    "doesnt",  "didnt",    "isnt",  "arent",  "wasnt",
    "werent", "couldnt", "wouldnt", "shouldnt", "hasnt", "havent", "hadnt",
};

/*
 * A raw word and what follows it become one or two words: "cannot" is "can" "not"; "can't"
 * (the raw words "can", "t" around one apostrophe) is "can" "not", "won't" is "will" "not",
 * and any other "...n't" is the word without its n, then "not". Returns how many raw words
 * were used (1 or 2).
 */
static int push_raw(struct tl__words *words, const char *text, const struct tl__word *raw,
                    const struct tl__word *next, int *rc)
{
    struct tl__word word = *raw;
    struct tl__word not_word = *raw;
    not_word.alias = "not";
    not_word.breaks = false;
    bool apostrophe = false;
    if (next != NULL && next->len == 1 && same_word(next->text, 1, "t")) {
        const char *gap = text + raw->end;
        size_t gap_len = next->start - raw->end;
        apostrophe = (gap_len == 1 && (gap[0] == '\'' || gap[0] == '`')) ||
                     (gap_len == 3 &&
                      (memcmp(gap, "\xe2\x80\x99", 3) == 0 || memcmp(gap, "\xe2\x80\x98", 3) == 0));
    }
    if (apostrophe && raw->len >= 2 &&
        (raw->text[raw->len - 1] == 'n' || raw->text[raw->len - 1] == 'N')) {
        if (same_word(raw->text, raw->len, "won"))
            word.alias = "will";
        else if (!same_word(raw->text, raw->len, "can"))
            word.len--;
        not_word.text = next->text;
        not_word.len = next->len;
        /* Both words stand for the whole contraction when quoted. */
        not_word.start = word.start = raw->start;
        not_word.end = word.end = next->end;
        if ((*rc = push_word(words, &word)) == 0)
            *rc = push_word(words, &not_word);
        return 2;
    }
    bool joined = same_word(raw->text, raw->len, "cannot");
    size_t cut = 3; /* "cannot": "can" and "not" */
    for (size_t i = 0; !joined && i < sizeof joined_negations / sizeof joined_negations[0]; i++) {
        if (same_word(raw->text, raw->len, joined_negations[i])) {
            joined = true;
            cut = raw->len - 2;
        }
    }
    if (joined) {
        if (same_word(raw->text, raw->len, "wont"))
            word.alias = "will";
        else if (same_word(raw->text, raw->len, "cant"))
            cut = 3;
        word.len = cut;
        if ((*rc = push_word(words, &word)) == 0)
            *rc = push_word(words, &not_word);
        return 1;
    }
    *rc = push_word(words, &word);
    return 1;
}

int tl__words_add(struct tl__words *words, const char *text, size_t len, int field)
{
    const unsigned char *bytes = (const unsigned char *)text;
    struct tl__word pending[2];
    size_t pending_count = 0;
    bool breaks = true;
    size_t i = 0;
    int rc = 0;
    while (i <= len && rc == 0) {
        /* The next raw word, or none at the end. */
        struct tl__word raw = {0};
        bool found = false;
        while (i < len) {
            size_t sep = separator_length(bytes, len, i);
            if (sep == 0 && (ascii_word_byte(bytes[i]) || bytes[i] >= 0x80))
                break;
            if (sep == 0 && breaks_sentence(bytes[i]))
                breaks = true;
            i += sep ? sep : 1;
        }
        if (i < len) {
            size_t start = i;
            while (i < len && separator_length(bytes, len, i) == 0 &&
                   (ascii_word_byte(bytes[i]) || bytes[i] >= 0x80))
                i++;
            raw = (struct tl__word){text + start, i - start, NULL, start, i, field, breaks};
            breaks = false;
            found = true;
        } else {
            i = len + 1;
        }
        /* Raw words are held one behind, to see whether an apostrophe and "t" follow. */
        if (found)
            pending[pending_count++] = raw;
        if (pending_count == 2 || (!found && pending_count == 1)) {
            int used =
                push_raw(words, text, &pending[0], pending_count == 2 ? &pending[1] : NULL, &rc);
            if (used == 2)
                pending_count = 0;
            else if (pending_count == 2) {
                pending[0] = pending[1];
                pending_count = 1;
            } else {
                pending_count = 0;
            }
        }
    }
    return rc;
}

void tl__words_reset(struct tl__words *words)
{
    words->count = 0;
}

void tl__words_free(struct tl__words *words)
{
    free(words->items);
    words->items = NULL;
    words->count = words->cap = 0;
}

int tl_classify_words(const char *text, size_t len, tl_classify_word_fn fn, void *arg)
{
    struct tl__words words = {0};
    char *lower = NULL;
    int rc = tl__words_add(&words, text, len, 0);
    if (rc == 0 && (lower = malloc(len + 1)) == NULL)
        rc = TL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < words.count; i++) {
        const struct tl__word *word = &words.items[i];
        size_t word_len = word->alias ? strlen(word->alias) : word->len;
        memcpy(lower, word->alias ? word->alias : word->text, word_len);
        for (size_t k = 0; k < word_len; k++)
            if (lower[k] >= 'A' && lower[k] <= 'Z')
                lower[k] = (char)(lower[k] - 'A' + 'a');
        lower[word_len] = '\0';
        rc = fn(lower, word_len, arg);
    }
    free(lower);
    tl__words_free(&words);
    return rc;
}

/* Does the word match one pattern word (lowercase, maybe ending in '*' for a prefix)? */
static bool word_matches(const struct tl__word *word, const char *pattern, size_t pattern_len)
{
    bool prefix = pattern_len > 0 && pattern[pattern_len - 1] == '*';
    size_t want = prefix ? pattern_len - 1 : pattern_len;
    const char *text = word->alias ? word->alias : word->text;
    size_t len = word->alias ? strlen(word->alias) : word->len;
    if (len < want || (!prefix && len != want))
        return false;
    for (size_t i = 0; i < want; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)pattern[i])
            return false;
    }
    return true;
}

/* Does the phrase (words separated by one space) match at words[at]? */
static size_t phrase_matches_at(const struct tl__words *words, size_t at, const char *phrase,
                                size_t phrase_len)
{
    size_t count = 0;
    size_t i = 0;
    while (i < phrase_len) {
        size_t end = i;
        while (end < phrase_len && phrase[end] != ' ')
            end++;
        size_t index = at + count;
        if (index >= words->count)
            return 0;
        const struct tl__word *word = &words->items[index];
        if (count > 0 && (word->breaks || word->field != words->items[at].field))
            return 0;
        if (!word_matches(word, phrase + i, end - i))
            return 0;
        count++;
        i = end + 1;
    }
    return count;
}

bool tl__phrases_find(const struct tl__words *words, const char *phrases, struct tl__match *match)
{
    for (size_t at = 0; phrases != NULL && at < words->count; at++) {
        const char *phrase = phrases;
        while (*phrase != '\0') {
            const char *bar = strchr(phrase, '|');
            size_t phrase_len = bar ? (size_t)(bar - phrase) : strlen(phrase);
            size_t count = phrase_matches_at(words, at, phrase, phrase_len);
            if (count > 0) {
                match->first = at;
                match->count = count;
                return true;
            }
            phrase += phrase_len + (bar ? 1 : 0);
        }
    }
    return false;
}

/* --- the rules on the user's words ---------------------------------------------------------- */

enum words_effect {
    WORDS_SET,        /* names its category and/or sets its severity */
    WORDS_WORKAROUND, /* lowers S2 to S3 */
    WORDS_REQUEST,    /* lowers S3 to S4 */
};

struct words_rule {
    const char *id;
    enum tl_category category;
    int severity;
    enum words_effect effect;
    const char *any;    /* fires when one of these phrases is there... */
    const char *also;   /* ...and, if set, one of these too... */
    const char *unless; /* ...and, if set, none of these */
};

/*
 * Phrases are written as the words they match (docs/desk.md "Words"): "can not" matches
 * "can't", "cannot" and "can not"; "i o" matches "I/O". The order is the table's precedence
 * among rules that tie (docs/desk.md "Precedence").
 */
static const struct words_rule words_rules[] = {
    {"words-ransomware", TL_CATEGORY_SECURITY, 1, WORDS_SET,
     "ransom*|hacked|hacker|hackers|compromised|data breach|files are encrypted|encrypted my "
     "files|encrypted all my files",
     NULL, NULL},
    {"words-credentials-given", TL_CATEGORY_SECURITY, 1, WORDS_SET,
     "typed my password|typed in my password|entered my password|gave my password|gave away my "
     "password|entered my credentials|typed my credentials",
     "fake|phishing|phish*|suspicious|scam*|not real|not legit*", NULL},
    {"words-security", TL_CATEGORY_SECURITY, 2, WORDS_SET,
     "virus|viruses|malware|phishing|phish*|trojan|spyware|keylogger|suspicious|scam*|infected|"
     "infection",
     NULL, NULL},
    {"words-many-users", TL_CATEGORY_NONE, 1, WORDS_SET,
     "everyone|everybody|nobody|no one|whole team|whole office|entire office|whole department|"
     "entire department|entire team|all users|all of us|all staff|many users|several users|"
     "whole floor|entire floor|whole company",
     NULL, NULL},
    {"words-cannot-work", TL_CATEGORY_NONE, 2, WORDS_SET,
     "can not work|unable to work|can not do my job|can not do any work|can not get any work", NULL,
     NULL},
    {"words-login-blocked", TL_CATEGORY_ACCOUNT, 2, WORDS_SET,
     "locked out|account locked|account is locked|log in|login|logon|log on|sign in|signin|"
     "logging in|signing in",
     "not|unable|locked|fail*|denied|wrong|incorrect|rejected|expired|forgot|forgotten", NULL},
    {"words-account", TL_CATEGORY_ACCOUNT, 3, WORDS_SET,
     "password|passwords|passphrase|account|accounts|username|user name|login|log in|logon|"
     "sign in|mfa|2fa|two factor|authenticator|display name|permission|permissions|access rights",
     NULL, NULL},
    {"words-network-down", TL_CATEGORY_NETWORK, 2, WORDS_SET,
     "internet|wifi|wi fi|wlan|wireless|network|ethernet|vpn|websites|web sites",
     "not|no|down|unable|lost|fail*|drops|dropping|disconnect*|timed out|times out", NULL},
    {"words-network", TL_CATEGORY_NETWORK, 3, WORDS_SET,
     "internet|wifi|wi fi|wlan|wireless|network|ethernet|vpn|dns|router|proxy|websites|web sites|"
     "connection|connect|connecting|offline|online",
     NULL, NULL},
    {"words-printing", TL_CATEGORY_PRINTING, 3, WORDS_SET,
     "print*|toner|paper jam|jam|jammed|scanner|scanning|cups", NULL, NULL},
    {"words-disk-full", TL_CATEGORY_DISK, 2, WORDS_SET,
     "disk is full|disk full|drive is full|drive full|storage is full|storage full|no space "
     "left|out of space|not enough space|no space",
     NULL, NULL},
    {"words-disk", TL_CATEGORY_DISK, 3, WORDS_SET,
     "disk|disks|disk space|drive|drives|hard drive|storage|partition|quota|space|ssd", NULL, NULL},
    {"words-slow", TL_CATEGORY_PERFORMANCE, 3, WORDS_SET,
     "slow|slower|slowly|sluggish|lag|laggy|lagging|freeze|freezes|freezing|frozen|hang|hangs|"
     "hanging|unresponsive|takes forever|take forever|takes ages|take ages|high cpu",
     NULL, NULL},
    {"words-crash", TL_CATEGORY_APPLICATION, 3, WORDS_SET,
     "crash|crashes|crashed|crashing|closes by itself|keeps closing|quits|quit unexpectedly|"
     "will not open|will not start|does not open|does not start|not responding|stopped "
     "responding|extension|plugin|add on|error message",
     NULL, NULL},
    {"words-software", TL_CATEGORY_APPLICATION, 0, WORDS_SET,
     "install|installing|installed|software|program|programs|app|apps|application|applications|"
     "update|updates|upgrade|license|licence|browser|firefox|chrome|chromium|thunderbird|outlook|"
     "excel|libreoffice|teams|zoom|slack|skype|acrobat",
     NULL, NULL},
    {"words-hardware", TL_CATEGORY_HARDWARE, 3, WORDS_SET,
     "keyboard|keyboards|mouse|monitor|monitors|screen|display|battery|charger|charging|usb|"
     "webcam|camera|microphone|mic|headset|headphones|speaker|speakers|fan|fans|overheat*|hot|"
     "dock|docking|bluetooth|touchpad|trackpad|noise|noisy|clicking|beep|beeping|cable|power "
     "button|cracked",
     NULL, NULL},
    {"words-clock", TL_CATEGORY_OTHER, 3, WORDS_SET,
     "clock|wrong time|time is wrong|time zone|timezone|date is wrong|wrong date", NULL, NULL},
    {"words-workaround", TL_CATEGORY_NONE, 0, WORDS_WORKAROUND,
     "works|can still|still work|works fine|work fine|everywhere else|elsewhere|workaround", NULL,
     "nothing works|never works|no longer works|nothing else works|hardly works"},
    {"words-request", TL_CATEGORY_NONE, 0, WORDS_REQUEST,
     "how do i|how can i|how to|where do i|where can i|could you|can you|please install|would "
     "like|i d like|request|requesting|question|not urgent|no rush|no hurry|when you have time|"
     "is it possible",
     NULL, NULL},
};

#define WORDS_RULE_COUNT (sizeof words_rules / sizeof words_rules[0])

/* --- the proposal --------------------------------------------------------------------------- */

enum source { SOURCE_WORDS = 0, SOURCE_DIAGNOSTICS = 1 };

struct candidate {
    enum source source;
    size_t table_index; /* in its table */
    size_t order;       /* findings: in the document */
    size_t score;       /* words: distinct words matched */
    enum words_effect effect;
    tl_classify_reason_t reason;
};

static int rank_of(int severity)
{
    return severity == 0 ? TL_SEVERITY_MAX + 1 : severity;
}

static int compare_candidates(const void *a_ptr, const void *b_ptr)
{
    const struct candidate *a = a_ptr, *b = b_ptr;
    if (rank_of(a->reason.severity) != rank_of(b->reason.severity))
        return rank_of(a->reason.severity) - rank_of(b->reason.severity);
    if (a->source != b->source)
        return (int)a->source - (int)b->source;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->table_index != b->table_index)
        return a->table_index < b->table_index ? -1 : 1;
    if (a->order != b->order)
        return a->order < b->order ? -1 : 1;
    return 0;
}

/* The user's own words for a match, escaped and clipped, in quotes. */
#define QUOTE_COLUMNS 40
#define QUOTE_SIZE 168 /* 40 columns of at most 4 bytes, the ellipsis and the NUL */

static void quote_match(char out[QUOTE_SIZE], const struct tl__words *words,
                        const struct tl__match *match, const char *const fields[2])
{
    const struct tl__word *first = &words->items[match->first];
    const struct tl__word *last = &words->items[match->first + match->count - 1];
    const char *source = fields[first->field];
    size_t len = last->end - first->start;
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        snprintf(out, QUOTE_SIZE, "...");
        return;
    }
    memcpy(copy, source + first->start, len);
    copy[len] = '\0';
    tl_text_clip(out, QUOTE_SIZE, copy, QUOTE_COLUMNS, TL_TEXT_LINE);
    free(copy);
}

/*
 * How much of the text speaks of a rule: each distinct word its phrases match counts once, or
 * twice if it is matched in the title, the user's own summary of the problem.
 */
static size_t rule_score(const struct tl__words *words, const char *phrases)
{
    size_t score = 0;
    const struct tl__word *seen[64];
    bool seen_in_title[64];
    size_t seen_count = 0;
    for (size_t at = 0; at < words->count; at++) {
        const char *phrase = phrases;
        while (*phrase != '\0') {
            const char *bar = strchr(phrase, '|');
            size_t phrase_len = bar ? (size_t)(bar - phrase) : strlen(phrase);
            size_t count = phrase_matches_at(words, at, phrase, phrase_len);
            for (size_t k = 0; k < count; k++) {
                const struct tl__word *word = &words->items[at + k];
                const char *text = word->alias ? word->alias : word->text;
                size_t len = word->alias ? strlen(word->alias) : word->len;
                bool in_title = word->field == 0;
                size_t s = 0;
                for (; s < seen_count; s++) {
                    const char *seen_text = seen[s]->alias ? seen[s]->alias : seen[s]->text;
                    size_t seen_len = seen[s]->alias ? strlen(seen[s]->alias) : seen[s]->len;
                    if (seen_len == len && strncasecmp(seen_text, text, len) == 0)
                        break;
                }
                if (s < seen_count) {
                    if (in_title && !seen_in_title[s]) {
                        seen_in_title[s] = true;
                        score++;
                    }
                } else if (seen_count < sizeof seen / sizeof seen[0]) {
                    seen[seen_count] = word;
                    seen_in_title[seen_count++] = in_title;
                    score += in_title ? 2 : 1;
                }
            }
            phrase += phrase_len + (bar ? 1 : 0);
        }
    }
    return score;
}

static int words_candidates(const struct tl__words *words, const char *const fields[2],
                            struct candidate *out, size_t *count)
{
    for (size_t i = 0; i < WORDS_RULE_COUNT; i++) {
        const struct words_rule *rule = &words_rules[i];
        struct tl__match match = {0}, also_match = {0}, unless_match = {0};
        if (!tl__phrases_find(words, rule->any, &match))
            continue;
        if (rule->also != NULL && !tl__phrases_find(words, rule->also, &also_match))
            continue;
        if (rule->unless != NULL && tl__phrases_find(words, rule->unless, &unless_match))
            continue;
        struct candidate *candidate = &out[(*count)++];
        memset(candidate, 0, sizeof *candidate);
        candidate->source = SOURCE_WORDS;
        candidate->table_index = i;
        candidate->effect = rule->effect;
        candidate->score = rule_score(words, rule->any);
        candidate->reason.rule = rule->id;
        candidate->reason.category = rule->category;
        candidate->reason.severity = rule->severity;
        char quote[QUOTE_SIZE], also_quote[QUOTE_SIZE];
        quote_match(quote, words, &match, fields);
        if (rule->also != NULL) {
            quote_match(also_quote, words, &also_match, fields);
            line_format(candidate->reason.evidence, "the user wrote \"%s\" and \"%s\"", quote,
                        also_quote);
        } else {
            line_format(candidate->reason.evidence, "the user wrote \"%s\"", quote);
        }
    }
    return 0;
}

static int check_text(const char *text, const char *name, char *why, size_t why_size)
{
    size_t len = text ? strlen(text) : 0;
    if (len > TL_CLASSIFY_TEXT_MAX) {
        set_why(why, why_size, "the %s is %zu bytes, more than the %d a classification reads", name,
                len, TL_CLASSIFY_TEXT_MAX);
        return TL_EINVAL;
    }
    return 0;
}

int tl_classify_propose(const tl_classify_ticket_t *ticket, tl_classification_t *out, char *why,
                        size_t why_size)
{
    int rc;
    struct tl__words words = {0};
    struct candidate *candidates = NULL;
    tl_classification_t *result = NULL;
    if (ticket == NULL || out == NULL) {
        set_why(why, why_size, "no ticket to classify");
        return TL_EINVAL;
    }
    const char *fields[2] = {ticket->title ? ticket->title : "",
                             ticket->description ? ticket->description : ""};
    if ((rc = check_text(fields[0], "title", why, why_size)) < 0 ||
        (rc = check_text(fields[1], "description", why, why_size)) < 0)
        goto out;
    size_t finding_count = tl_classify_findings_count(ticket->findings);
    if (ticket->findings != NULL &&
        (ticket->evidence_hash == NULL || tl_sha256_hex_valid(ticket->evidence_hash) != 1)) {
        set_why(why, why_size,
                "the diagnostics' evidence hash is not 64 lowercase hexadecimal digits");
        rc = TL_EINVAL;
        goto out;
    }
    candidates = calloc(WORDS_RULE_COUNT + finding_count, sizeof *candidates);
    result = calloc(1, sizeof *result);
    if (candidates == NULL || result == NULL) {
        set_why(why, why_size, "out of memory");
        rc = TL_ENOMEM;
        goto out;
    }
    if ((rc = tl__words_add(&words, fields[0], strlen(fields[0]), 0)) < 0 ||
        (rc = tl__words_add(&words, fields[1], strlen(fields[1]), 1)) < 0) {
        set_why(why, why_size, "out of memory");
        goto out;
    }
    size_t count = 0;
    words_candidates(&words, fields, candidates, &count);
    for (size_t i = 0; i < finding_count; i++) {
        const tl_classify_finding_t *finding = tl_classify_findings_get(ticket->findings, i);
        struct candidate *candidate = &candidates[count++];
        candidate->source = SOURCE_DIAGNOSTICS;
        candidate->table_index = tl__finding_rule_index(finding);
        candidate->order = i;
        candidate->effect = WORDS_SET;
        candidate->reason.rule = finding->rule;
        candidate->reason.category = finding->category;
        candidate->reason.severity = finding->severity;
        line_format(candidate->reason.evidence, "%s, diagnostics sha256:%s", finding->fact,
                    ticket->evidence_hash);
    }
    qsort(candidates, count, sizeof *candidates, compare_candidates);

    /* Category: the first ranked rule that names one. */
    const struct candidate *category_from = NULL;
    const struct candidate *severity_from = NULL;
    const struct candidate *workaround = NULL, *request = NULL;
    int diagnostics_best = TL_SEVERITY_MAX + 1;
    for (size_t i = 0; i < count; i++) {
        const struct candidate *candidate = &candidates[i];
        if (category_from == NULL && candidate->reason.category != TL_CATEGORY_NONE)
            category_from = candidate;
        if (severity_from == NULL && candidate->reason.severity != 0)
            severity_from = candidate;
        if (candidate->effect == WORDS_WORKAROUND && workaround == NULL)
            workaround = candidate;
        if (candidate->effect == WORDS_REQUEST && request == NULL)
            request = candidate;
        if (candidate->source == SOURCE_DIAGNOSTICS && candidate->reason.severity != 0 &&
            candidate->reason.severity < diagnostics_best)
            diagnostics_best = candidate->reason.severity;
    }
    if (category_from != NULL) {
        result->category = category_from->reason.category;
        result->category_rule = category_from->reason.rule;
        line_format(result->category_line, "%s: %s", tl_classify_category_name(result->category),
                    category_from->reason.evidence);
    } else {
        result->category = TL_CATEGORY_OTHER;
        result->category_rule = "default";
        line_format(result->category_line, "other: no rule named a category");
    }
    char base_line[TL_CLASSIFY_LINE_SIZE];
    int severity = 3;
    if (severity_from != NULL) {
        severity = severity_from->reason.severity;
        result->severity_rule = severity_from->reason.rule;
        line_format(base_line, "%s", severity_from->reason.evidence);
    } else {
        result->severity_rule = "default";
        line_format(base_line, "no rule set a severity (the default)");
    }
    /* The user's words lower a severity one step, never an S1 and never below what the
     * diagnostics show. */
    const struct candidate *lowered_by = NULL;
    if (severity == 2 && workaround != NULL && diagnostics_best > 2)
        lowered_by = workaround;
    else if (severity == 3 && request != NULL && diagnostics_best > 3)
        lowered_by = request;
    if (lowered_by != NULL) {
        result->severity = severity + 1;
        result->severity_rule = lowered_by->reason.rule;
        line_format(result->severity_line, "S%d: %s: %s, lowered from S%d", result->severity,
                    lowered_by->reason.evidence,
                    lowered_by->effect == WORDS_WORKAROUND ? "a workaround" : "a request",
                    severity);
    } else {
        result->severity = severity;
        line_format(result->severity_line, "S%d: %s", severity, base_line);
    }
    for (size_t i = 0; i < count; i++) {
        if (result->reason_count == TL_CLASSIFY_REASONS_MAX) {
            result->reasons_left_out = count - i;
            break;
        }
        result->reasons[result->reason_count++] = candidates[i].reason;
    }
    *out = *result;
    rc = 0;
out:
    tl__words_free(&words);
    free(candidates);
    free(result);
    return rc;
}

/* --- the rules as docs/desk.md shows them --------------------------------------------------- */

static int put(tl_buf_t *out, const char *text)
{
    return tl_buf_put(out, text, strlen(text));
}

static int put_phrases(tl_buf_t *out, const char *phrases)
{
    int rc = 0;
    const char *phrase = phrases;
    bool first = true;
    while (rc == 0 && *phrase != '\0') {
        const char *bar = strchr(phrase, '|');
        size_t len = bar ? (size_t)(bar - phrase) : strlen(phrase);
        if ((rc = put(out, first ? "\"" : ", \"")) < 0 || (rc = tl_buf_put(out, phrase, len)) < 0 ||
            (rc = put(out, "\"")) < 0)
            break;
        first = false;
        phrase += len + (bar ? 1 : 0);
    }
    return rc;
}

static const char *severity_cell(int severity)
{
    static const char *const cells[] = {"—", "S1", "S2", "S3", "S4"};
    return severity >= 0 && severity <= 4 ? cells[severity] : "?";
}

int tl_classify_rules_markdown(tl_buf_t *out)
{
    int rc = 0;
    if ((rc = put(out, "**On the user's words**\n\n"
                       "| rule | category | severity | fires when the title or description has "
                       "| cites |\n|---|---|---|---|---|\n")) < 0)
        return rc;
    for (size_t i = 0; i < WORDS_RULE_COUNT && rc == 0; i++) {
        const struct words_rule *rule = &words_rules[i];
        const char *category = tl_classify_category_name(rule->category);
        const char *severity = rule->effect == WORDS_WORKAROUND ? "lowers S2 to S3"
                               : rule->effect == WORDS_REQUEST  ? "lowers S3 to S4"
                                                                : severity_cell(rule->severity);
        if ((rc = put(out, "| `")) < 0 || (rc = put(out, rule->id)) < 0 ||
            (rc = put(out, "` | ")) < 0 || (rc = put(out, category ? category : "—")) < 0 ||
            (rc = put(out, " | ")) < 0 || (rc = put(out, severity)) < 0 ||
            (rc = put(out, " | one of ")) < 0 || (rc = put_phrases(out, rule->any)) < 0)
            break;
        if (rule->also != NULL &&
            ((rc = put(out, "; and one of ")) < 0 || (rc = put_phrases(out, rule->also)) < 0))
            break;
        if (rule->unless != NULL &&
            ((rc = put(out, "; but none of ")) < 0 || (rc = put_phrases(out, rule->unless)) < 0))
            break;
        rc = put(out, rule->also != NULL ? " | the user wrote \"…\" and \"…\" |\n"
                                         : " | the user wrote \"…\" |\n");
    }
    if (rc == 0)
        rc = put(out, "\n**On the diagnostics**\n\n"
                      "| rule | category | severity | fingerprint keeps | fires when the "
                      "diagnostics show | cites, e.g. |\n|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < tl__diag_rule_count && rc == 0; i++) {
        const struct tl__diag_rule *rule = &tl__diag_rules[i];
        const char *key = !rule->fingerprint ? "— (not counted)"
                          : rule->key        ? rule->key
                                             : "the rule's id";
        if ((rc = put(out, "| `")) < 0 || (rc = put(out, rule->id)) < 0 ||
            (rc = put(out, "` | ")) < 0 ||
            (rc = put(out, tl_classify_category_name(rule->category))) < 0 ||
            (rc = put(out, " | ")) < 0 || (rc = put(out, severity_cell(rule->severity))) < 0 ||
            (rc = put(out, " | ")) < 0 || (rc = put(out, key)) < 0 || (rc = put(out, " | ")) < 0 ||
            (rc = put(out, rule->condition)) < 0 || (rc = put(out, " | `")) < 0 ||
            (rc = put(out, rule->cites)) < 0 || (rc = put(out, "` |\n")) < 0)
            break;
    }
    return rc;
}
