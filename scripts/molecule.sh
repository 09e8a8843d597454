#!/usr/bin/env bash
# Run `molecule test -s <scenario>` for every scenario directory
# extensions/molecule/<scenario>/ (one with a molecule.yml), one after another,
# and exit non-zero if any failed. No scenarios: says so and exits 0.
#
# molecule 26.10 and collections: run it from the collection root (where
# galaxy.yml is). It then detects the collection, looks for scenarios in
# extensions/molecule/**/molecule.yml and deep-merges
# extensions/molecule/config.yml (shared settings: default driver with
# managed: false against localhost, prerun: false, the collection self-link on
# ANSIBLE_COLLECTIONS_PATH) under each scenario's molecule.yml.
#
# Usage: bash scripts/molecule.sh [scenario ...]   (default: all scenarios)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
LIMIT=${MOLECULE_SCENARIO_TIMEOUT:-900}   # seconds per scenario
LINK=.collections/ansible_collections/svpms/incident_response

if [[ ! -x $BIN/molecule ]]; then
    echo "molecule: $BIN/molecule is missing: run 'make setup' first" >&2
    exit 2
fi
if [[ ! -e $LINK/galaxy.yml ]]; then
    # Same git-ignored self-link `make setup` creates; the scenarios resolve
    # svpms.incident_response.* through it.
    mkdir -p "$(dirname "$LINK")"
    ln -sfn ../../.. "$LINK"
    echo "molecule: created the collection self-link $LINK"
fi

# molecule runs ansible-playbook/ansible-galaxy from PATH.
export PATH="$BIN:$PATH"
# molecule writes its own ansible.cfg per scenario; the repo's (callback, inventory) must not leak in.
unset ANSIBLE_CONFIG
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 NO_COLOR=1 PY_COLORS=0

if (($#)); then
    scenarios=("$@")
else
    scenarios=()
    for f in extensions/molecule/*/molecule.yml; do
        [[ -e $f ]] || continue
        d=${f%/molecule.yml}
        scenarios+=("${d##*/}")
    done
fi
if ((${#scenarios[@]} == 0)); then
    echo "molecule: no scenarios in extensions/molecule/*/ - nothing to run"
    exit 0
fi

failed=()
total_start=$SECONDS
for s in "${scenarios[@]}"; do
    if [[ ! -f extensions/molecule/$s/molecule.yml ]]; then
        echo "molecule: FAIL $s: extensions/molecule/$s/molecule.yml not found"
        failed+=("$s")
        continue
    fi
    echo "molecule: running scenario $s"
    start=$SECONDS
    rc=0
    # With managed: false there is no destroy step, so molecule would keep
    # "prepared: true" from an earlier run and skip prepare (the sandbox would
    # never start): start every scenario from a clean ephemeral state.
    timeout 120 molecule reset -s "$s" >/dev/null 2>&1 || true
    timeout --kill-after=30 "$LIMIT" molecule test -s "$s" || rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "molecule: FAIL $s: timed out after ${LIMIT}s"
        failed+=("$s")
    elif ((rc != 0)); then
        echo "molecule: FAIL $s: molecule test exited $rc ($((SECONDS - start))s)"
        failed+=("$s")
    else
        echo "molecule: ok   $s ($((SECONDS - start))s)"
    fi
done

if ((${#failed[@]})); then
    echo "molecule: FAILED ${#failed[@]}/${#scenarios[@]} scenario(s): ${failed[*]}"
    exit 1
fi
echo "molecule: ${#scenarios[@]} scenario(s) passed in $((SECONDS - total_start))s"
