#!/usr/bin/env python3
"""Translate template.yaml with the SAM translator and check the result.

Usage: python3 infra/checks/sam_translate.py [template.yaml] [-o out.json] [--moto]

1. Translates the SAM template into plain CloudFormation, the way
   `sam deploy` does (local CodeUri folders are replaced by S3 locations,
   as `sam package` would), and fails on any translator error.
2. Checks the shape of the output: every API route is an HTTP API route
   that reaches a live alias, every API function rolls out through
   CodeDeploy with rollback alarms, throttling and access logs are set.
3. With --moto, creates the translated stack in moto's CloudFormation
   (in process, no AWS account) and fails unless it reaches
   CREATE_COMPLETE. Resource types moto does not model are left out of
   that run (references to them become placeholders) and counted; the
   custom resource is left out because moto would run the function in a
   container.
"""

import argparse
import copy
import json
import os
import sys

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

from cfnlint.decode import decode  # noqa: E402
from samtranslator.parser.parser import Parser  # noqa: E402
from samtranslator.translator.translator import Translator  # noqa: E402
from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402

EXPECTED_ROUTES = {
    "GET /health",
    "POST /api/events",
    "POST /api/events/batch",
    "GET /api/activity",
    "GET /api/sessions",
    "GET /api/events/{id}",
    "GET /api/export",
    "GET /api/stats",
    "GET /api/admin/tenants",
    "POST /api/admin/tenants",
    "GET /api/admin/tenants/{id}",
    "PATCH /api/admin/tenants/{id}",
    "DELETE /api/admin/tenants/{id}",
    "GET /api/admin/tenants/{id}/keys",
    "POST /api/admin/tenants/{id}/keys",
    "DELETE /api/admin/keys/{id}",
    "GET /api/admin/audit",
    "POST /api/admin/alerts/evaluate",
    "GET /api/alerts/rules",
    "POST /api/alerts/rules",
    "DELETE /api/alerts/rules",
    "DELETE /api/alerts/rules/{id}",
    "GET /api/alerts",
    # The dashboard's page and its files (functions/ui).
    "GET /",
    "GET /app.js",
    "GET /app.css",
    "GET /favicon.svg",
    "POST /api/admin/maintenance",
}
API_FUNCTIONS = {"IngestFunction", "ActivityFunction", "StatsFunction", "AdminFunction", "UiFunction"}


def fail(msg):
    print(f"sam_translate: {msg}", file=sys.stderr)
    sys.exit(1)


def load(path):
    template, matches = decode(path)
    if matches:
        fail(f"cannot parse {path}: {matches}")
    # cfn-lint's nodes are dict/str subclasses; make them plain.
    return json.loads(json.dumps(template))


def packaged(template):
    """Replace local code folders by S3 locations, as `sam package` does."""
    t = copy.deepcopy(template)
    for name, res in t["Resources"].items():
        if res.get("Type") == "AWS::Serverless::Function":
            uri = res.get("Properties", {}).get("CodeUri")
            if isinstance(uri, str) and not uri.startswith("s3://"):
                res["Properties"]["CodeUri"] = f"s3://kilometers-artifacts/{name}.zip"
    return t


def translate(template):
    with open(os.path.join(os.path.dirname(__import__("samtranslator").__file__),
                           "internal", "data", "aws_managed_policies.json")) as f:
        policies = json.load(f)
    translator = Translator(managed_policy_map=None, sam_parser=Parser())
    try:
        return translator.translate(
            sam_template=template,
            parameter_values={},
            get_managed_policy_map=lambda: policies.get("aws", policies),
        )
    except InvalidDocumentException as e:
        fail("translator: " + "; ".join(str(c) for c in e.causes))


def check(cfn):
    res = cfn["Resources"]
    by_type = {}
    for name, r in res.items():
        by_type.setdefault(r["Type"], []).append(name)

    apis = by_type.get("AWS::ApiGatewayV2::Api", [])
    if len(apis) != 1:
        fail(f"want one AWS::ApiGatewayV2::Api, got {apis}")
    body = res[apis[0]]["Properties"].get("Body", {})
    routes = {}
    for path, methods in body.get("paths", {}).items():
        for method, op in methods.items():
            if method.startswith("x-"):
                continue
            routes[f"{method.upper()} {path}"] = op.get("x-amazon-apigateway-integration", {})
    missing = EXPECTED_ROUTES - set(routes)
    extra = set(routes) - EXPECTED_ROUTES
    if missing or extra:
        fail(f"routes: missing {sorted(missing)}, unexpected {sorted(extra)}")
    for route, integ in routes.items():
        uri = json.dumps(integ.get("uri", ""))
        if "Aliaslive" not in uri:
            fail(f"route {route} does not call a live alias: {uri}")
        if integ.get("payloadFormatVersion") != "2.0":
            fail(f"route {route}: payload format {integ.get('payloadFormatVersion')}, want 2.0")

    stages = by_type.get("AWS::ApiGatewayV2::Stage", [])
    if len(stages) != 1:
        fail(f"want one stage, got {stages}")
    sp = res[stages[0]]["Properties"]
    drs = sp.get("DefaultRouteSettings", {})
    if "ThrottlingRateLimit" not in drs or "ThrottlingBurstLimit" not in drs:
        fail("stage has no throttling")
    if "AccessLogSettings" not in sp:
        fail("stage has no access logs")
    if "CorsConfiguration" in res[apis[0]]["Properties"] or "x-amazon-apigateway-cors" in body:
        fail("CORS is on; it should stay off unless a browser client needs it")

    groups = by_type.get("AWS::CodeDeploy::DeploymentGroup", [])
    for fn in API_FUNCTIONS:
        dg = fn + "DeploymentGroup"
        if dg not in groups:
            fail(f"{fn} has no CodeDeploy deployment group")
        p = res[dg]["Properties"]
        if not p.get("AlarmConfiguration", {}).get("Alarms"):
            fail(f"{dg} has no rollback alarms")
        events = p.get("AutoRollbackConfiguration", {}).get("Events", [])
        if "DEPLOYMENT_STOP_ON_ALARM" not in events:
            fail(f"{dg} does not roll back on alarms: {events}")
        fnres = res[fn]["Properties"]
        if fnres.get("Runtime") != "provided.al2023" or fnres.get("Architectures") != ["arm64"]:
            fail(f"{fn}: runtime {fnres.get('Runtime')} {fnres.get('Architectures')}")
        if "VpcConfig" not in fnres:
            fail(f"{fn} is not in the VPC")
    for fn in sorted(by_type.get("AWS::Lambda::Function", [])):
        if "LoggingConfig" not in res[fn]["Properties"]:
            fail(f"{fn} logs to a log group without retention")
    if "Migrations" not in res or res["Migrations"]["Type"] != "Custom::Migrations":
        fail("no Migrations custom resource")
    # The maintenance job: a schedule whose target is the live alias.
    rules = [n for n in by_type.get("AWS::Events::Rule", []) if n.startswith("MaintenanceFunction")]
    if len(rules) != 1:
        fail(f"want one schedule of MaintenanceFunction, got {rules}")
    rule = res[rules[0]]["Properties"]
    targets = rule.get("Targets", [])
    if not rule.get("ScheduleExpression", "").startswith("rate(") or len(targets) != 1 or \
            "Aliaslive" not in json.dumps(targets[0].get("Arn")):
        fail(f"{rules[0]}: schedule {rule.get('ScheduleExpression')}, targets {targets}; want a rate calling the live alias")
    print(f"sam_translate: {len(res)} resources, {len(routes)} routes, "
          f"{len(groups)} gradual deployments: ok")


# Attributes moto does not model on types it otherwise creates.
MOTO_UNSUPPORTED_ATTRIBUTES = {
    ("Database", "MasterUserSecret.SecretArn"):
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-0000-AbCdEf",
}


def placeholders(node, dropped):
    """Replace references to dropped resources with fixed strings."""
    import re

    if isinstance(node, list):
        return [placeholders(n, dropped) for n in node]
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"} and node["Ref"] in dropped:
        return node["Ref"]
    if set(node) == {"Fn::GetAtt"}:
        target = tuple(node["Fn::GetAtt"])
        if target in MOTO_UNSUPPORTED_ATTRIBUTES:
            return MOTO_UNSUPPORTED_ATTRIBUTES[target]
        if target[0] in dropped:
            return f"arn:aws:placeholder:{target[0]}/{target[1]}"
    if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
        sub = re.sub(r"\$\{([A-Za-z0-9]+)(\.[A-Za-z0-9.]+)?\}",
                     lambda m: m.group(1) if m.group(1) in dropped else m.group(0), node["Fn::Sub"])
        return {"Fn::Sub": sub}
    return {k: placeholders(v, dropped) for k, v in node.items()}


def resolve_cidr(node, params):
    """Evaluate Fn::Cidr (moto has no Fn::Cidr) with the parameters' defaults,
    innermost first, so that a block taken by Fn::Select from another
    Fn::Cidr resolves too."""
    import ipaddress

    if isinstance(node, list):
        return [resolve_cidr(n, params) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: resolve_cidr(v, params) for k, v in node.items()}
    if set(node) == {"Fn::Cidr"}:
        block, count, bits = node["Fn::Cidr"]
        if isinstance(block, dict) and "Ref" in block:
            block = params[block["Ref"]]["Default"]
        net = ipaddress.ip_network(block)
        subnets = net.subnets(new_prefix=net.max_prefixlen - int(bits))
        return [str(next(subnets)) for _ in range(int(count))]
    if set(node) == {"Fn::Select"}:
        index, items = node["Fn::Select"]
        if isinstance(items, list) and all(isinstance(i, str) for i in items):
            return items[int(index)]
    return node


def moto_create(cfn):
    import logging
    import warnings

    import boto3
    from moto import mock_aws

    warnings.filterwarnings("ignore", module="moto")
    warnings.filterwarnings("ignore", message="Tried to parse")
    logging.getLogger("moto").setLevel(logging.ERROR)

    from moto.cloudformation.parsing import resource_class_from_type

    t = copy.deepcopy(cfn)
    # The custom resource is left out: moto would run the function in a container.
    dropped = sorted(n for n, r in t["Resources"].items()
                     if r["Type"].startswith("Custom::") or not resource_class_from_type(r["Type"]))
    # Permissions on a dropped alias go too (moto checks the function exists).
    dropped += sorted(n for n, r in t["Resources"].items()
                      if r["Type"] == "AWS::Lambda::Permission"
                      and (r["Properties"].get("FunctionName") or {}).get("Ref") in dropped)
    for n in dropped:
        del t["Resources"][n]
    t = resolve_cidr(placeholders(t, set(dropped)), t.get("Parameters", {}))
    # A schedule targets a function's alias, which is dropped: moto wants an
    # ARN there, not the placeholder name.
    for r in t["Resources"].values():
        if r["Type"] == "AWS::Events::Rule":
            for target in r["Properties"].get("Targets", []):
                if isinstance(target.get("Arn"), str) and not target["Arn"].startswith("arn:"):
                    target["Arn"] = f"arn:aws:lambda:us-east-1:123456789012:function:{target['Arn']}"
    for r in t["Resources"].values():
        deps = r.get("DependsOn")
        if isinstance(deps, str):
            deps = [deps]
        if deps:
            deps = [d for d in deps if d not in dropped]
            if deps:
                r["DependsOn"] = deps
            else:
                del r["DependsOn"]
        # The alias' CodeDeploy update policy names a dropped deployment group.
        r.pop("UpdatePolicy", None)

    # Once with the defaults, once with every optional part switched on.
    for name, params in (("kilometers", []),
                         ("kilometers-egress", [{"ParameterKey": "WebhookEgress", "ParameterValue": "nat"}])):
        with mock_aws():
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket="kilometers-artifacts")
            for res in t["Resources"]:
                s3.put_object(Bucket="kilometers-artifacts", Key=f"{res}.zip", Body=b"PK\x05\x06" + b"\0" * 18)
            cf = boto3.client("cloudformation")
            cf.create_stack(StackName=name, TemplateBody=json.dumps(t), Parameters=params,
                            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
            stack = cf.describe_stacks(StackName=name)["Stacks"][0]
            if stack["StackStatus"] != "CREATE_COMPLETE":
                events = cf.describe_stack_events(StackName=name)["StackEvents"]
                reasons = [e.get("ResourceStatusReason") for e in events if e.get("ResourceStatusReason")]
                fail(f"moto: stack {name} {stack['StackStatus']}: {reasons[:5]}")
            outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
            if not outputs.get("ApiUrl", "").startswith("https://"):
                fail(f"moto: {name}: ApiUrl output {outputs.get('ApiUrl')!r}")
            created = cf.list_stack_resources(StackName=name)["StackResourceSummaries"]
            types = {r["ResourceType"] for r in created}
            if ("AWS::EC2::NatGateway" in types) != bool(params):
                fail(f"moto: {name}: NAT gateway created={'AWS::EC2::NatGateway' in types}, want {bool(params)}")
            print(f"sam_translate: moto created {name}: {len(created)} resources "
                  f"(left out {len(dropped)} of types moto lacks); ApiUrl={outputs['ApiUrl']}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("template", nargs="?", default="template.yaml")
    ap.add_argument("-o", "--output", help="write the translated template (JSON) here")
    ap.add_argument("--moto", action="store_true", help="also create the stack in moto")
    args = ap.parse_args()

    cfn = translate(packaged(load(args.template)))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(cfn, f, indent=1, sort_keys=True)
    check(cfn)
    if args.moto:
        moto_create(cfn)


if __name__ == "__main__":
    main()
