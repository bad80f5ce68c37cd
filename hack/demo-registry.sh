#!/usr/bin/env bash
# hack/demo-registry.sh TRACKING_URI [MODEL]: registers a demo model in a real MLflow registry for
# `examples/modeldeployment-registry-alias.yaml`: the registered model MODEL (default credit-scorer) with two
# versions (sources s3://demo-models/MODEL/1 and /2, version tags 1.0.0 and 1.1.0) and its alias `champion`
# on version 1. Run again, it registers nothing twice and puts the alias back on version 1. Talks MLflow's
# REST API 2.0 with curl; prints the version numbers.
set -euo pipefail

URI=${1:?usage: hack/demo-registry.sh TRACKING_URI [MODEL]}
MODEL=${2:-credit-scorer}
API=$URI/api/2.0/mlflow

call() { # call METHOD PATH JSON|QUERY: prints the body; fails with MLflow's message on an error
  local method=$1 path=$2 data=$3 out code
  if [[ $method == GET ]]; then
    out=$(curl -sS -w '\n%{http_code}' --get "$API/$path" --data "$data")
  else
    out=$(curl -sS -w '\n%{http_code}' -X "$method" -H 'Content-Type: application/json' "$API/$path" -d "$data")
  fi
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  if [[ $code != 200 ]]; then
    echo "$out"
    return 1
  fi
  echo "$out"
}

if ! err=$(call POST registered-models/create "{\"name\":\"$MODEL\",\"description\":\"Champion quickstart demo model\"}"); then
  [[ $err == *RESOURCE_ALREADY_EXISTS* ]] || { echo "demo-registry: cannot create $MODEL: $err" >&2; exit 1; }
fi
# The versions already registered for this demo, by source.
existing=$(call GET model-versions/search "filter=name='$MODEL'&max_results=100")
versions=()
for i in 1 2; do
  source=s3://demo-models/$MODEL/$i
  number=$(printf '%s' "$existing" | python3 -c '
import json, sys
src = sys.argv[1]
vs = [v for v in json.load(sys.stdin).get("model_versions", []) if v.get("source") == src]
print(min((int(v["version"]) for v in vs), default=""))' "$source")
  if [[ -z $number ]]; then
    body=$(call POST model-versions/create \
      "{\"name\":\"$MODEL\",\"source\":\"$source\",\"description\":\"demo version $i\",\"tags\":[{\"key\":\"champion.ml/version\",\"value\":\"1.$((i - 1)).0\"}]}") ||
      { echo "demo-registry: cannot register $source: $body" >&2; exit 1; }
    number=$(printf '%s' "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["model_version"]["version"])')
  fi
  versions+=("$number")
done
call POST registered-models/alias "{\"name\":\"$MODEL\",\"alias\":\"champion\",\"version\":\"${versions[0]}\"}" >/dev/null ||
  { echo "demo-registry: cannot set the alias" >&2; exit 1; }
echo "${versions[@]}"
