#!/usr/bin/env bash
# Run `ansible-test sanity --local --python 3.11` on a staged copy of the
# collection.
#
# - ansible-test refuses to run unless the working directory is physically
#   .../ansible_collections/svpms/incident_response (a symlinked path is
#   refused), so the tracked + untracked-not-ignored files
#   (`git ls-files -co --exclude-standard`) are copied to a temp dir with that
#   layout. Ignored files (.venv, build/, tests/output/, ...) are not copied.
# - ansible-test bootstraps pip in each sanity venv with a get-pip script it
#   downloads from a host that is unreachable here. We seed its cache
#   (~/.ansible/test/cache/get_pip_<ver>.py) with a shim that runs ensurepip and
#   then `pip install`, keeping this machine's pip configuration (index,
#   find-links, certificates).
# - No sanity test is skipped: none of ansible-test 2.19's sanity tests needs
#   Docker, and the only network they need is pip installing their pinned
#   requirements, which goes through the configured package index. Tests with
#   nothing to check (pslint: no PowerShell; shellcheck: skipped by ansible-test
#   when the shellcheck binary is absent) report themselves as skipped.
#
# Extra arguments are passed to ansible-test, e.g.
#   bash scripts/sanity.sh --test validate-modules
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
PYTHON_VERSION=3.11
LIMIT=${SANITY_TIMEOUT:-1800}   # seconds for the whole ansible-test run

if [[ ! -x $BIN/ansible-test ]]; then
    echo "sanity: $BIN/ansible-test is missing: run 'make setup' first" >&2
    exit 2
fi
export PATH="$BIN:$PATH"    # ansible-test looks up python$PYTHON_VERSION on PATH
# The repo's ansible.cfg and collection paths point at the working tree, not at
# the staged copy: let ansible-test configure Ansible itself.
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS

start=$SECONDS

# --- 1. stage the collection at a physical ansible_collections/... path ------
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/svpms-sanity.XXXXXX")
STAGE=$(cd -P "$STAGE" && pwd)   # resolve symlinks (e.g. /tmp -> /private/tmp)
cleanup() { rm -rf "$STAGE"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
DEST=$STAGE/ansible_collections/svpms/incident_response
mkdir -p "$DEST"

# List tracked + untracked-not-ignored files; drop tracked files deleted from
# the working tree (still in the index) so tar does not fail on them.
git ls-files -co --exclude-standard -z |
    while IFS= read -r -d '' f; do
        if [[ -e $f || -L $f ]]; then printf '%s\0' "$f"; fi
    done |
    tar --null --no-recursion -T - -cf - | tar -xf - -C "$DEST"
echo "sanity: staged $(find "$DEST" -type f | wc -l) files in $DEST"

# --- 2. seed ansible-test's get-pip cache with an offline shim ---------------
# The pip version ansible-test bootstraps is pinned in its python_requirements.py.
PIP_VERSION=$("$BIN/python" - <<'EOF'
import pathlib, re, ansible_test
src = (pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
m = re.search(r"default_packages = dict\(\s*pip='([^']+)'", src)
print(m.group(1) if m else "")
EOF
)
if [[ -z $PIP_VERSION ]]; then
    echo "sanity: cannot find the pip version ansible-test bootstraps (ansible_test/_internal/python_requirements.py changed?)" >&2
    exit 1
fi
CACHE_DIR=$HOME/.ansible/test/cache
GET_PIP=$CACHE_DIR/get_pip_${PIP_VERSION//./_}.py
SHIM_MARKER="svpms-incident-response offline get-pip shim"
mkdir -p "$CACHE_DIR"
if [[ -e $GET_PIP ]] && ! grep -q "$SHIM_MARKER" "$GET_PIP"; then
    echo "sanity: using the existing $GET_PIP (not our shim)"
else
    # (Re)write our shim when it differs, so a fix to it reaches every machine;
    # never overwrite a genuine get-pip.py someone downloaded. Written to a temp
    # file and renamed: a concurrent sanity run may be reading it.
    [[ -e $GET_PIP ]] && verb=updated || verb=seeded
    cat >"$GET_PIP.$$.tmp" <<EOF
# $SHIM_MARKER (written by scripts/sanity.sh).
"""Stand-in for get-pip.py: bootstrap pip with ensurepip, then pip install.

ansible-test runs this as \`python get_pip_X.py [pip options] pip==X --no-setuptools --no-wheel\`
inside a new virtual environment created without pip.
"""
import os
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}  # get-pip.py options pip does not know
args = sys.argv[1:]
pip_args = [a for a in args if a not in GET_PIP_ONLY]

# ensurepip deletes every PIP_* variable and sets PIP_CONFIG_FILE=/dev/null in
# its own process; run it in a child so this process's environment is intact.
subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True,
               stdout=subprocess.DEVNULL)

# Undo any PIP_CONFIG_FILE=/dev/null so pip reads this machine's pip.conf
# (package index, find-links, certificates).
env = dict(os.environ)
if env.get("PIP_CONFIG_FILE") == os.devnull:
    del env["PIP_CONFIG_FILE"]
subprocess.run([sys.executable, "-m", "pip", "install", "--quiet"] + pip_args, check=True, env=env)

# get-pip.py --no-setuptools/--no-wheel leaves those out; ensurepip installs setuptools.
unwanted = [p for p, flag in (("setuptools", "--no-setuptools"), ("wheel", "--no-wheel")) if flag in args]
if unwanted:
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet"] + unwanted,
                   check=False, env=env, stderr=subprocess.DEVNULL)
EOF
    if cmp -s "$GET_PIP.$$.tmp" "$GET_PIP"; then
        rm -f "$GET_PIP.$$.tmp"
    else
        mv -f "$GET_PIP.$$.tmp" "$GET_PIP"
        echo "sanity: $verb $GET_PIP (offline shim for pip $PIP_VERSION)"
    fi
fi

# --- 3. run ansible-test sanity ----------------------------------------------
cd "$DEST"
rc=0
timeout --kill-after=30 "$LIMIT" \
    "$BIN/ansible-test" sanity --local --python "$PYTHON_VERSION" --color no "$@" || rc=$?
elapsed=$((SECONDS - start))
if ((rc == 124 || rc == 137)); then
    echo "sanity: FAILED: ansible-test sanity timed out after ${LIMIT}s"
    exit 1
elif ((rc != 0)); then
    echo "sanity: FAILED: ansible-test sanity exited $rc (${elapsed}s)"
    exit 1
fi
echo "sanity: passed in ${elapsed}s"
