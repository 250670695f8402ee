/*
 * The admin's checks and repairs of what the relay keeps, behind two commands:
 *
 *   tierline-relay audit-recover --data DIR [--json]
 *       starts a new audit segment that records a lost, shortened or different log
 *       (relay/store/audit_chain.h, docs/audit-format.md §7), so that serve can start again;
 *   tierline-relay evidence verify --data DIR [--json]
 *       re-hashes every stored evidence item and lists the damaged and missing ones with the
 *       tickets that hold them.
 *
 * Each prints for people or, with json, one JSON object on out, and returns the exit status.
 */
#ifndef TL_INTEGRITY_H
#define TL_INTEGRITY_H

#include <stdio.h>

/* 0 recovered (or nothing to recover), 1 refused or failed. Refuses while a relay serves. */
int tl_integrity_audit_recover(const char *data_dir, int json, FILE *out, FILE *err);
/* 0 every item whole, 1 some damaged or missing (or the check could not run). */
int tl_integrity_evidence_verify(const char *data_dir, int json, FILE *out, FILE *err);

#endif
