#include "proto/names.h"

#include <string.h>

static int lower_or_digit(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int upper_or_digit(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int tl_runbook_name_valid(const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > TL_RUNBOOK_NAME_MAX || name[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!lower_or_digit(name[i]) && name[i] != '-')
            return 0;
    return 1;
}

int tl_runbook_param_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > TL_RUNBOOK_PARAM_NAME_MAX || !(name[0] >= 'A' && name[0] <= 'Z'))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!upper_or_digit(name[i]) && name[i] != '_')
            return 0;
    return 1;
}

size_t tl_name_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[TL_NAME_DISTANCE_MAX + 1];
    if (la > TL_NAME_DISTANCE_MAX || lb > TL_NAME_DISTANCE_MAX)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb];
}
