#!/usr/bin/env bash
# The README's API walkthrough, against a running `partnerflow serve` (default
# http://127.0.0.1:8080) with the shipped development credentials: P-1002's portal starts an
# onboarding, a channel manager returns it for changes by a signed decision, the portal
# resubmits it by a signed event naming the open wait, and the operator reads the timeline and
# checks the evidence bundle's audit chain. Needs curl, openssl and jq. CI runs it, so the
# README cannot drift from the code.
set -euo pipefail
cd "$(dirname "$0")"
BASE=${PARTNERFLOW_URL:-http://127.0.0.1:8080}
OPERATOR='Authorization: Bearer dev-operator-token'

# sign SECRET METHOD TARGET KEY BODY: the X-Partnerflow-Signature header's value, an HMAC of
# "<t>.<METHOD>.<TARGET>.<KEY>.<BODY>".
sign() {
  local t mac
  t=$(date +%s)
  mac=$(printf '%s.%s.%s.%s.%s' "$t" "$2" "$3" "$4" "$5" | openssl dgst -sha256 -hmac "$1" -hex | sed 's/^.* //')
  printf 't=%s,v1=%s' "$t" "$mac"
}

# post INTEGRATION SECRET TARGET KEY BODY: a signed POST; prints the answer, fails on an error.
post() {
  curl -sS --fail-with-body -X POST "$BASE$3" \
    -H "X-Partnerflow-Integration: $1" -H "X-Partnerflow-Signature: $(sign "$2" POST "$3" "$4" "$5")" \
    -H "Idempotency-Key: $4" -H 'Content-Type: application/json' -d "$5"
}

operator_get() { curl -sS --fail-with-body "$BASE$1" -H "$OPERATOR"; }

# wait_for ID STEP: until the instance's current step is STEP (steps run asynchronously).
wait_for() {
  for _ in $(seq 1 100); do
    [ "$(operator_get "/v1/instances/$1" | jq -r '.current_steps[0] // empty')" = "$2" ] && return 0
    sleep 0.2
  done
  echo "instance $1 never reached $2: $(operator_get "/v1/instances/$1" | jq -c '{status, current_steps}')" >&2
  return 1
}

RUN=$(date +%s%N)
KEY="P-1002-walkthrough-$RUN"

echo "1. P-1002's portal submits an application (examples/onboarding_application.json)"
BODY=$(jq -c --arg key "$KEY" '{business_key: $key, input: ., actor: {id: "P-1002/liu"}}' onboarding_application.json)
ID=$(post portal-p1002 dev-portal-p1002-secret /v1/workflows/partner_onboarding/instances "start-$RUN" "$BODY" | jq -r .id)
echo "   instance $ID"
wait_for "$ID" qualification_review

echo "2. The channel manager's review task, and a signed 'return' decision"
TASK=$(operator_get '/v1/tasks?role=channel_manager&status=open' | jq -r --arg id "$ID" 'map(select(.instance_id == $id))[0].id')
BODY=$(jq -c . decision.qualification_review.return.json)
post crm dev-crm-secret "/v1/tasks/$TASK/decision" "return-$RUN" "$BODY" | jq -c '{decision, current_step}'
wait_for "$ID" await_resubmission

echo "3. The portal resubmits, naming the open wait (examples/onboarding_application.resubmitted.json)"
WAIT=$(operator_get "/v1/instances/$ID" | jq -r '.waits[0].correlation')
BODY=$(jq -c . onboarding_application.resubmitted.json)
post portal-p1002 dev-portal-p1002-secret "/v1/instances/$ID/events/application_resubmitted?correlation=$WAIT" "resubmit-$RUN" "$BODY" \
  | jq -c '{event, current_step}'
wait_for "$ID" contract

echo "4. The timeline, and the evidence bundle's audit chain"
operator_get "/v1/instances/$ID" | jq -r '.timeline[] | "   \(.at)  \(.actor)  \(.kind)"'
VERIFIED=$(operator_get "/v1/instances/$ID/evidence" | jq -r .chain.verified)
[ "$VERIFIED" = true ] || { echo "the audit chain does not verify" >&2; exit 1; }
echo "walkthrough passed: $ID is at the contract, its audit chain verifies"
