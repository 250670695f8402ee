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
