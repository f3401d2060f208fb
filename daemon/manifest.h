/* manifest.h: the YAML manifest of `jaco apply -f` (jaco.yaml(5)) into
 * deployments, parsed with libyaml; every error names the file, the line
 * and the field. */
#ifndef JD_MANIFEST_H
#define JD_MANIFEST_H

#include <stddef.h>

#include "deployment.h"

#define JD_MANIFEST_MAX_BYTES (1u << 20)

/* Parse text (len bytes; name is what errors call it, the file's path) into
 * *out, an array of *n deployments (free with jd_manifest_free). 0, or -1
 * with "NAME:LINE: FIELD: what is wrong" in err; nothing to free then. */
int jd_manifest_parse(const char *name,
                      const char *text,
                      size_t len,
                      struct jd_deployment ***out,
                      unsigned *n,
                      char *err,
                      size_t size);

/* The same for the file at path ("-": standard input). */
int jd_manifest_load(const char *path,
                     struct jd_deployment ***out,
                     unsigned *n,
                     char *err,
                     size_t size);

void jd_manifest_free(struct jd_deployment **deps, unsigned n);

#endif
