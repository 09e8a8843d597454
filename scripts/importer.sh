#!/usr/bin/env bash
# Run galaxy-importer (what Galaxy / Automation Hub run on upload) on the built
# collection tarball, build/svpms-incident_response-<version>.tar.gz (`make build`,
# which `make importer` runs first).
#
# Fails when the importer exits non-zero, logs any ERROR/CRITICAL line or a
# traceback, or does not log "Importer processing completed successfully".
# WARNING lines (ansible-lint findings, sanity ignore files, missing changelog)
# are listed; set IMPORTER_FAIL_ON_WARNINGS=1 to fail on them too.
#
# Configuration (a temp file passed via GALAXY_IMPORTER_CONFIG):
#   run_ansible_test = False  -- with it on the importer wants Docker/Podman, and
#                                when that fails it logs an error yet exits 0;
#                                scripts/sanity.sh runs ansible-test instead.
#   local_image_docker = False, ansible_test_local_image = False -- no containers.
#   check_required_tags = True  -- as Galaxy does: galaxy.yml needs a known tag.
#   require_v1_or_greater = True -- we ship 1.0.0+.
#   run_ansible_doc / run_ansible_lint / check_changelog = True (defaults).
# The importer runs in a temp dir: it writes importer_result.json to its cwd.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin

if ! "$BIN/python" -c 'import galaxy_importer' 2>/dev/null; then
    echo "importer: galaxy-importer is not installed in $BIN/python: run 'make setup' first" >&2
    exit 2
fi
VERSION=$("$BIN/python" -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
TARBALL=$ROOT/build/svpms-incident_response-$VERSION.tar.gz
if [[ ! -f $TARBALL ]]; then
    echo "importer: $TARBALL not found: run 'make build' first" >&2
    exit 2
fi

# The importer runs ansible-doc and ansible-lint from PATH.
export PATH="$BIN:$PATH"
# The repo's ansible.cfg must not leak into the importer's ansible-doc/ansible-lint runs.
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS
# Drop GALAXY_IMPORTER_<KEY> overrides from the caller's environment.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^GALAXY_IMPORTER_' || true)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/svpms-importer.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/tmp" "$WORK/ansible-tmp"
cat >"$WORK/galaxy-importer.cfg" <<EOF
[galaxy-importer]
run_ansible_test = False
local_image_docker = False
ansible_test_local_image = False
check_required_tags = True
require_v1_or_greater = True
run_ansible_doc = True
run_ansible_lint = True
offline_ansible_lint = True
check_changelog = True
log_level_main = INFO
tmp_root_dir = $WORK/tmp
ansible_local_tmp = $WORK/ansible-tmp
EOF
export GALAXY_IMPORTER_CONFIG=$WORK/galaxy-importer.cfg

echo "importer: importing ${TARBALL#"$ROOT"/}"
start=$SECONDS
rc=0
(cd "$WORK" && timeout --kill-after=10 600 "$BIN/python" -m galaxy_importer.main "$TARBALL") \
    >"$WORK/importer.log" 2>&1 || rc=$?
cat "$WORK/importer.log"
elapsed=$((SECONDS - start))

problems=()
if ((rc == 124 || rc == 137)); then
    problems+=("timed out after 600s")
elif ((rc != 0)); then
    problems+=("galaxy_importer exited $rc")
fi
errors=$(grep -Ec '^(ERROR|CRITICAL):|Traceback \(most recent call last\)' "$WORK/importer.log" || true)
warnings=$(grep -Ec '^WARNING:' "$WORK/importer.log" || true)
if ((errors > 0)); then
    problems+=("$errors ERROR/CRITICAL/traceback line(s)")
fi
if ! grep -qx 'Importer processing completed successfully' "$WORK/importer.log"; then
    problems+=("no 'Importer processing completed successfully' line")
fi
if [[ ! -s $WORK/importer_result.json ]]; then
    problems+=("no importer_result.json written")
fi
if ((warnings > 0)) && [[ ${IMPORTER_FAIL_ON_WARNINGS:-0} == 1 ]]; then
    problems+=("$warnings WARNING line(s) and IMPORTER_FAIL_ON_WARNINGS=1")
fi

if ((${#problems[@]})); then
    msg=$(printf '%s; ' "${problems[@]}")
    echo "importer: FAILED (${elapsed}s): ${msg%; }"
    grep -E '^(ERROR|CRITICAL):' "$WORK/importer.log" | sed 's/^/importer:   /' || true
    exit 1
fi
echo "importer: passed in ${elapsed}s ($warnings warning(s) above)"
