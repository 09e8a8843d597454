#!/usr/bin/env bash
# make demo: start the local sandbox, inject a high 5xx error rate (a bad
# deployment), run the scenario runbook against it, and print the outcome,
# the timings and where the report is. KEEP_SANDBOX=1 leaves it running.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
sandbox() { PYTHONPATH=sandbox "$PY" -m svpms_sandbox --state-dir .sandbox "$@"; }
export ANSIBLE_CONFIG="$PWD/ansible.cfg"

# shellcheck disable=SC2329  # invoked by the EXIT trap below
cleanup() {
  if [ "${KEEP_SANDBOX:-0}" != "1" ]; then
    sandbox stop >/dev/null 2>&1 || true
    echo "Sandbox stopped (KEEP_SANDBOX=1 make demo keeps it running; make demo-stop stops it)."
  fi
}
trap cleanup EXIT

echo "==> Starting the local SVPMS sandbox (moto_server + service twin on 127.0.0.1)"
sandbox start
echo "==> Injecting the incident: deploy a bad revision (high 5xx error rate)"
sandbox inject high_error_rate
echo "==> Waiting (at most 90 s) for the alert condition: 5xx rate above 2% in CloudWatch"
PYTHONPATH=sandbox "$PY" scripts/wait_for_symptom.py --state-dir .sandbox --threshold 2 --timeout 90

incident_id="demo-$(date -u +%Y%m%dT%H%M%SZ)-high-error-rate"
echo "==> Running the runbook: ansible-playbook playbooks/scenario_high_error_rate.yml -i inventories/sandbox"
rc=0
.venv/bin/ansible-playbook playbooks/scenario_high_error_rate.yml -i inventories/sandbox \
  -e incident_id="$incident_id" || rc=$?

"$PY" scripts/demo_summary.py --incident-dir "incidents/$incident_id" --injected-at-file .sandbox/injected_at
exit $rc
