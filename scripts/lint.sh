#!/usr/bin/env bash
# Lint the collection: ansible-lint (production profile), yamllint over every
# YAML file, and antsibull-changelog lint. Runs every check, prints each finding
# as `path:line: message`, and exits non-zero if any check failed.
#
# Usage: bash scripts/lint.sh        (from anywhere; `make lint` runs it)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin

for tool in ansible-lint yamllint antsibull-changelog; do
    if [[ ! -x $BIN/$tool ]]; then
        echo "lint: $BIN/$tool is missing: run 'make setup' first" >&2
        exit 2
    fi
done

# ansible-lint warns (and molecule/ansible subprocesses misbehave) when the
# venv's bin directory is not on PATH.
export PATH="$BIN:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
export NO_COLOR=1
# ansible-lint installs this collection from galaxy.yml into ./.ansible/collections
# (git-ignored) and puts that first on the collections path, so
# svpms.incident_response.* roles, modules and the callback resolve by FQCN.
# It does so only in "isolated" mode, which any of these variables turns off
# (it would then install into ~/.ansible/collections instead): unset them.
unset ANSIBLE_HOME ANSIBLE_LIBRARY ANSIBLE_ROLES_PATH ANSIBLE_COLLECTIONS_PATH

failed=()

run_check() {
    # run_check NAME TIMEOUT_SECONDS CMD...
    local name=$1 limit=$2 rc=0 start=$SECONDS
    shift 2
    echo "lint: running $name"
    timeout --kill-after=10 "$limit" "$@" || rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "lint: $name FAILED: timed out after ${limit}s"
        failed+=("$name")
    elif ((rc != 0)); then
        echo "lint: $name FAILED (exit $rc, $((SECONDS - start))s)"
        failed+=("$name")
    else
        echo "lint: $name passed ($((SECONDS - start))s)"
    fi
}

# 1. ansible-lint: profile, exclude_paths and offline=false live in .ansible-lint.
#    pep8 format = one `path:line:col: rule: message` line per finding.
run_check "ansible-lint (production profile)" 600 \
    ansible-lint --profile production --format pep8 --nocolor

# 2. yamllint over every YAML file (ansible-lint only lints files it classifies;
#    this also covers e.g. tests/ and extensions/ YAML). Config: .yamllint.
run_check "yamllint" 300 yamllint --strict --format parsable .

# 3. changelog fragments and changelogs/changelog.yaml.
run_check "antsibull-changelog lint" 120 antsibull-changelog lint

if ((${#failed[@]})); then
    echo "lint: FAILED: ${failed[*]}"
    exit 1
fi
echo "lint: all checks passed"
