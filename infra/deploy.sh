#!/usr/bin/env bash
# Builds and deploys the Kilometers backend (template.yaml) with AWS SAM,
# then smoke-tests the deployed API with infra/smoke.sh.
#
#   infra/deploy.sh                   deploy; guided (prompts, saved to infra/samconfig.toml)
#                                     when the stack does not exist yet and a terminal is attached
#   infra/deploy.sh --guided          prompt for every setting again
#   infra/deploy.sh --ci              no prompts, no changeset confirmation (workflows)
#   infra/deploy.sh --no-smoke        skip the smoke test
#   infra/deploy.sh --smoke-only      only smoke-test the deployed stack
#   infra/deploy.sh --parameter AlarmEmail=ops@example.com [--parameter K=V ...]
#                                     change template parameters; the others keep their deployed values
#
# Environment: STACK_NAME (default kilometers), AWS_REGION or AWS_PROFILE as
# for any AWS CLI. Needs sam, aws and go on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

config="$PWD/infra/samconfig.toml"
stack=${STACK_NAME:-kilometers}
mode=auto smoke=1 deploy=1
params=()
while [ $# -gt 0 ]; do
  case $1 in
    --guided) mode=guided ;;
    --ci) mode=ci ;;
    --no-smoke) smoke=0 ;;
    --smoke-only) deploy=0 ;;
    --parameter)
      if [ $# -lt 2 ] || [[ $2 != ?*=* ]]; then echo "deploy: --parameter needs Key=Value" >&2; exit 2; fi
      params+=("$2")
      shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "deploy: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

need() { command -v "$1" >/dev/null || { echo "deploy: $1 is not installed ($2)" >&2; exit 1; }; }
need aws "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"

stack_exists() { aws cloudformation describe-stacks --stack-name "$stack" >/dev/null 2>&1; }

output() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

if [ "$deploy" = 1 ]; then
  need sam "https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html"
  need go "https://go.dev/dl/"
  if [ "$mode" = auto ]; then
    mode=plain
    if ! stack_exists && [ -t 0 ]; then
      echo "deploy: stack $stack does not exist yet: guided deploy (answers are saved to infra/samconfig.toml)"
      mode=guided
    fi
  fi

  echo "== sam build"
  # Static arm64 binaries for provided.al2023, without the RPC shim.
  CGO_ENABLED=0 GOFLAGS="-trimpath -tags=lambda.norpc" sam build --config-file "$config" --template-file "$PWD/template.yaml"

  # A value that changes on every deploy makes CloudFormation update the
  # Migrations custom resource, so migrations run on every deploy.
  deploy_id="$(date -u +%Y%m%dT%H%M%SZ)-$(git rev-parse --short HEAD 2>/dev/null || echo nogit)"
  args=(--config-file "$config" --stack-name "$stack" --parameter-overrides "DeployId=$deploy_id" "${params[@]}")
  case $mode in
    guided) args+=(--guided) ;;
    ci) args+=(--no-confirm-changeset --no-fail-on-empty-changeset --no-progressbar) ;;
  esac
  # sam deploy picks up the built template in .aws-sam/build.
  echo "== sam deploy (stack $stack, DeployId=$deploy_id)"
  sam deploy "${args[@]}"
fi

if [ "$smoke" = 1 ]; then
  echo "== smoke test of stack $stack"
  url=$(output ApiUrl)
  secret=$(output AdminTokenSecretArn)
  if [ -z "$url" ] || [ "$url" = None ] || [ -z "$secret" ] || [ "$secret" = None ]; then
    echo "deploy: stack $stack has no ApiUrl or AdminTokenSecretArn output" >&2
    exit 1
  fi
  token=$(aws secretsmanager get-secret-value --secret-id "$secret" --query SecretString --output text)
  [ -n "$token" ] || { echo "deploy: admin token secret $secret is empty" >&2; exit 1; }
  # Keep the token out of workflow logs.
  if [ "${GITHUB_ACTIONS:-}" = true ]; then echo "::add-mask::$token"; fi
  echo "API: $url"
  KILOMETERS_ADMIN_TOKEN=$token infra/smoke.sh "$url"
fi
