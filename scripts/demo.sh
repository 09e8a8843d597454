#!/usr/bin/env bash
# make demo: start the local sandbox, inject a high 5xx error rate (a bad
# deployment), run the scenario runbook against it, and print the outcome,
# the timings and where the report is. KEEP_SANDBOX=1 leaves it running.
# FAULT=lock_contention|cache_miss_storm|slow_deploy make demo runs the high
# latency scenario instead, FAULT=redis_down|jwt_key_mismatch|idp_cert_expired|
# user_table_denied the authentication scenario, FAULT=webhook_endpoint_down|
# webhook_secret_mismatch|stripe_key_revoked|signature_check_disabled the
# Stripe webhook failures scenario (triage routes each). For
# stripe_key_revoked, SVPMS_NEW_STRIPE_API_KEY=sk_test_... gives the runbook a
# new key to store; without one a human is asked for it.
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
fault=${FAULT:-high_error_rate}
case $fault in
  high_error_rate)
    echo "==> Injecting the incident: deploy a bad revision (high 5xx error rate)"
    sandbox inject high_error_rate
    echo "==> Waiting (at most 90 s) for the alert condition: 5xx rate above 5% in CloudWatch"
    PYTHONPATH=sandbox "$PY" scripts/wait_for_symptom.py --state-dir .sandbox --threshold 5 --timeout 90 ;;
  lock_contention|cache_miss_storm|slow_deploy)
    echo "==> Injecting the incident: $fault (high latency)"
    sandbox inject "$fault"
    echo "==> Waiting (at most 90 s) for the alert condition: p95 above 1000 ms"
    PYTHONPATH=sandbox "$PY" scripts/wait_for_symptom.py --state-dir .sandbox --symptom latency --timeout 90 ;;
  redis_down|jwt_key_mismatch|idp_cert_expired|user_table_denied)
    echo "==> Injecting the incident: $fault (authentication failures; logins fail at once)"
    sandbox inject "$fault" ;;
  webhook_endpoint_down|webhook_secret_mismatch|stripe_key_revoked|signature_check_disabled)
    echo "==> Injecting the incident: $fault (Stripe webhook failures)"
    sandbox inject "$fault"
    echo "==> Letting payment events pile up for 15 s (one payment every 2 s)"
    sleep 15 ;;
  *)
    echo "unknown FAULT=$fault: allowed high_error_rate, lock_contention, cache_miss_storm, slow_deploy," \
         "redis_down, jwt_key_mismatch, idp_cert_expired, user_table_denied, webhook_endpoint_down," \
         "webhook_secret_mismatch, stripe_key_revoked, signature_check_disabled" >&2
    exit 2 ;;
esac

incident_id="demo-$(date -u +%Y%m%dT%H%M%SZ)"
# connection.yml: the ports the sandbox really uses (a busy default port is replaced by a free one).
playbook() { .venv/bin/ansible-playbook "$@" -i inventories/sandbox -e @.sandbox/connection.yml -e incident_id="$incident_id"; }
rc=0
echo "==> Triage, page and respond: ansible-playbook playbooks/triage.yml -i inventories/sandbox -e triage_route=true"
playbook playbooks/triage.yml -e triage_route=true || rc=$?
if [ "$rc" -eq 0 ]; then
  echo "==> Resolve: ansible-playbook playbooks/resolve.yml -i inventories/sandbox -e incident_id=$incident_id"
  playbook playbooks/resolve.yml || rc=$?
fi
echo "==> Post-incident report: ansible-playbook playbooks/post_incident.yml -e incident_id=$incident_id"
playbook playbooks/post_incident.yml -e post_incident_notify=true || rc=$?

"$PY" scripts/demo_summary.py --incident-dir "incidents/$incident_id" --injected-at-file .sandbox/injected_at \
  --notifications .sandbox/notifications.jsonl
exit $rc
