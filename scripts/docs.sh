#!/usr/bin/env bash
# Check that the collection's documentation renders and is valid:
#   1. `ansible-doc svpms.incident_response.<m>` for every module in
#      plugins/modules (and `ansible-doc -t <type>` for every other documented
#      plugin: callback, lookup, inventory, ...) exits 0, prints something and
#      prints no warning/error (ansible-doc exits 0 with only a
#      "[WARNING]: ... was not found" when a plugin's docs cannot be loaded);
#   2. every role with meta/argument_specs.yml is listed by
#      `ansible-doc -t role -l svpms.incident_response` and renders with
#      `ansible-doc -t role svpms.incident_response.<role>`;
#   3. `antsibull-docs lint-collection-docs --plugin-docs .` (schema, markup,
#      and M()/O()/R() references to this collection and ansible.builtin).
# Runs every check, then exits non-zero if any failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
FQ=svpms.incident_response
LINK=.collections/ansible_collections/svpms/incident_response

for tool in ansible-doc antsibull-docs; do
    if [[ ! -x $BIN/$tool ]]; then
        echo "docs: $BIN/$tool is missing: run 'make setup' first" >&2
        exit 2
    fi
done
if [[ ! -e $LINK/galaxy.yml ]]; then
    # Same self-link `make setup` creates (git-ignored): resolves $FQ.* to this tree.
    mkdir -p "$(dirname "$LINK")"
    ln -sfn ../../.. "$LINK"
    echo "docs: created the collection self-link $LINK"
fi

export PATH="$BIN:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
# Only the self-link: never a stale copy molecule/ansible-lint installed elsewhere.
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.collections"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0

failed=()
checked=0
OUT=$(mktemp)
ERR=$(mktemp)
trap 'rm -f "$OUT" "$ERR"' EXIT

render() {
    # render TYPE NAME: ansible-doc must exit 0, print docs, and warn about nothing.
    local type=$1 name=$2 rc=0
    checked=$((checked + 1))
    timeout --kill-after=5 60 ansible-doc -t "$type" "$name" >"$OUT" 2>"$ERR" || rc=$?
    if ((rc != 0)); then
        echo "docs: FAIL $type $name: ansible-doc exited $rc: $(tr '\n' ' ' <"$ERR")"
        failed+=("$type:$name")
    elif [[ ! -s $OUT ]]; then
        echo "docs: FAIL $type $name: ansible-doc printed nothing: $(tr '\n' ' ' <"$ERR")"
        failed+=("$type:$name")
    elif grep -Eq 'WARNING|ERROR' "$ERR"; then
        echo "docs: FAIL $type $name: ansible-doc warned: $(tr '\n' ' ' <"$ERR")"
        failed+=("$type:$name")
    else
        echo "docs: ok   $type $name ($(wc -l <"$OUT") lines)"
    fi
}

plugin_names() {
    # plugin_names DIR: module/plugin names (file stems) in DIR, skipping __init__ and private files.
    local f
    for f in "$1"/*.py; do
        [[ -e $f ]] || continue
        f=${f##*/}
        f=${f%.py}
        [[ $f == _* ]] && continue
        echo "$f"
    done
}

# --- 1. modules (required) and other documented plugin types -----------------
modules=$(plugin_names plugins/modules)
if [[ -z $modules ]]; then
    echo "docs: no modules in plugins/modules"
fi
for m in $modules; do
    render module "$FQ.$m"
done
# Python plugin types whose DOCUMENTATION ansible-doc renders (filter/test
# plugins keep their docs in separate YAML files and are covered by step 3).
for type in become cache callback cliconf connection httpapi inventory lookup netconf shell strategy vars; do
    for p in $(plugin_names "plugins/$type"); do
        render "$type" "$FQ.$p"
    done
done

# --- 2. roles with an argument spec ------------------------------------------
roles=()
for spec in roles/*/meta/argument_specs.yml roles/*/meta/argument_specs.yaml; do
    [[ -e $spec ]] || continue
    r=${spec#roles/}
    roles+=("${r%%/*}")
done
if ((${#roles[@]})); then
    rc=0
    timeout --kill-after=5 120 ansible-doc -t role -l "$FQ" >"$OUT" 2>"$ERR" || rc=$?
    if ((rc != 0)) || grep -Eq 'WARNING|ERROR' "$ERR"; then
        echo "docs: FAIL ansible-doc -t role -l $FQ (exit $rc): $(tr '\n' ' ' <"$ERR")"
        failed+=("role-list")
    fi
    for r in "${roles[@]}"; do
        if ! grep -qx "$FQ.$r:" "$OUT"; then
            echo "docs: FAIL role $FQ.$r: not in 'ansible-doc -t role -l $FQ'"
            failed+=("role-list:$r")
        fi
    done
    for r in "${roles[@]}"; do
        render role "$FQ.$r"
    done
else
    echo "docs: no role has meta/argument_specs.yml"
fi

# --- 3. antsibull-docs lint --------------------------------------------------
# Run from the collection root with `.`: antsibull-docs reads galaxy.yml and
# loads the plugin/role docs through ansible-doc itself. `dependent` also
# validates references to ansible.builtin.* (references to collections we do
# not depend on, e.g. amazon.aws, are not checked).
echo "docs: running antsibull-docs lint-collection-docs --plugin-docs"
rc=0
timeout --kill-after=10 300 antsibull-docs lint-collection-docs --plugin-docs \
    --validate-collection-refs dependent . || rc=$?
if ((rc != 0)); then
    echo "docs: FAIL antsibull-docs lint-collection-docs (exit $rc)"
    failed+=("antsibull-docs")
fi

if ((${#failed[@]})); then
    echo "docs: FAILED (${#failed[@]}): ${failed[*]}"
    exit 1
fi
echo "docs: passed ($checked plugin/role docs rendered, antsibull-docs lint clean)"
