/* What compat_names.c and kernel_consts.c offer the test; each returns 0 or a failing line. */
#ifndef XRING_TEST_COMPAT_NAMES_H
#define XRING_TEST_COMPAT_NAMES_H

int compat_function_count(void);
int compat_nop_chain(void);
int compat_probe(void);
int compat_cmd_sock(void);
int compat_prep_encodings(void);
int compat_kernel_consts_checked(void);
/* On a mismatch: what was checked, the result and the one expected. */
int compat_documented_errors(const char **what, int *got, int *want);

#endif
