#!/usr/bin/env python3
"""Create template.yaml's storage resources (bucket, queues, table) in a moto server.

    python infra/bootstrap.py --endpoint http://127.0.0.1:5055 --stack picasso-test
    eval "$(python infra/bootstrap.py --endpoint ... --stack ...)"

The resources come from template.yaml itself, through moto's CloudFormation:
- the AWS::Serverless::* resources (functions with a local CodeUri, the HTTP API and its
  JWT authorizer), the AWS::Cognito::* ones (user pool, client, group, domain: moto's
  CloudFormation cannot create them, and nothing here verifies tokens), the operations ones
  (log groups, alarms, SNS topic, dashboard), the Transform, the Globals and the Rules are
  dropped, with the outputs and DependsOn that name them;
- what moto's CloudFormation silently ignores is then applied with the service APIs, read
  from the same template: the bucket's NotificationConfiguration (S3 -> SQS), CORS,
  public access block and ownership controls, and the table's TTL and point-in-time recovery;
  the webhook secret (AWS::SecretsManager::Secret) is created with its service API.
  Not applied: the bucket policy (its TLS-only deny would match every request to a plain-HTTP
  emulator) and the lifecycle rules (moto never runs them).

Stdout is only `export NAME=value` lines (for eval); progress goes to stderr.
Running it again for an existing stack reuses the stack and re-applies the settings.
Needs boto3 and PyYAML (both in the venv: pip install 'moto[server]' aws-sam-cli).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shlex
import sys
import time
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from cfn import references

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_ID = "123456789012"  # moto's default account


def log(msg: str) -> None:
    print(f"bootstrap: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------- template

def load_template(path: Path) -> dict:
    """Parse a CloudFormation YAML template, turning short-form tags into long form."""
    text = path.read_text()
    try:
        from samcli.yamlhelper import yaml_parse  # what `sam` itself uses
    except ImportError:
        yaml_parse = None
    if yaml_parse is not None:
        return yaml_parse(text)

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def tag(loader, suffix, node):
        name = suffix if suffix == "Ref" else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    Loader.add_multi_constructor("!", tag)
    return yaml.load(text, Loader=Loader)


# Resource types left out of the emulator's stack: SAM's (the transform is not run),
# Cognito's (moto's CloudFormation has no Cognito resources), and the operations ones (log
# groups, alarms, their topic and its key, the dashboard: they watch functions that do not run here).
NOT_IN_EMULATOR = ("AWS::Serverless::", "AWS::Cognito::", "AWS::CloudWatch::", "AWS::SNS::", "AWS::Logs::", "AWS::KMS::",
                   "AWS::ApiGatewayV2::", "AWS::Lambda::", "AWS::SecretsManager::")


def storage_template(template: dict) -> dict:
    """The template without its SAM and identity parts, as plain CloudFormation moto can create."""
    t = copy.deepcopy(template)
    t.pop("Transform", None)
    t.pop("Globals", None)
    # Rules only check parameter combinations (JwtIssuer needs JwtAudience) at deploy time.
    t.pop("Rules", None)
    removed = {name for name, res in t["Resources"].items()
               if res.get("Type", "").startswith(NOT_IN_EMULATOR)}
    for name in removed:
        del t["Resources"][name]
    for res in t["Resources"].values():
        deps = res.get("DependsOn")
        if isinstance(deps, str):
            deps = [deps]
        if deps is not None:
            deps = [d for d in deps if d not in removed]
            if deps:
                res["DependsOn"] = deps
            else:
                res.pop("DependsOn")
        leftover = references(res) & removed
        if leftover:
            sys.exit(f"bootstrap: a storage resource refers to {sorted(leftover)}, which moto cannot create")
    outputs = {k: v for k, v in t.get("Outputs", {}).items() if not references(v) & removed}
    if outputs:
        t["Outputs"] = outputs
    else:
        t.pop("Outputs", None)
    # Only the conditions what is left uses: the others may use functions moto's conditions lack.
    t["Conditions"] = used_conditions(t)
    if not t["Conditions"]:
        t.pop("Conditions")
    log(f"dropped {', '.join(sorted(removed))}")
    return t


def used_conditions(t: dict) -> dict:
    """The template's conditions that its resources and outputs name, and those they name."""
    conditions = t.get("Conditions", {})
    named: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Condition" and isinstance(value, str):
                    named.add(value)
                elif key == "Fn::If" and isinstance(value, list) and value:
                    named.add(value[0])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(t["Resources"])
    walk(t.get("Outputs", {}))
    seen: set[str] = set()
    while named - seen:
        name = (named - seen).pop()
        seen.add(name)
        walk(conditions.get(name, {}))
    return {k: v for k, v in conditions.items() if k in seen}


class Resolver:
    """Evaluates the intrinsic functions that the post-create settings use."""

    def __init__(self, template: dict, params: dict[str, str], stack: str, region: str,
                 physical: dict[str, str], clients: dict):
        self.template = template
        self.params = params
        self.pseudo = {
            "AWS::StackName": stack, "AWS::Region": region, "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
        }
        self.physical = physical
        self.clients = clients

    def param(self, name: str):
        spec = self.template.get("Parameters", {})[name]
        value = self.params.get(name, spec.get("Default"))
        if spec.get("Type") == "CommaDelimitedList":
            return [v.strip() for v in str(value).split(",")]
        return str(value)

    def ref(self, name: str):
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.template.get("Parameters", {}):
            return self.param(name)
        return self.physical[name]

    def get_att(self, name: str, attr: str) -> str:
        kind = self.template["Resources"][name]["Type"]
        pid = self.physical[name]
        if attr == "Arn":
            if kind == "AWS::SQS::Queue":
                return self.clients["sqs"].get_queue_attributes(
                    QueueUrl=pid, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{pid}"
            if kind == "AWS::DynamoDB::Table":
                return self.clients["dynamodb"].describe_table(TableName=pid)["Table"]["TableArn"]
        if attr == "QueueName" and kind == "AWS::SQS::Queue":
            return pid.rsplit("/", 1)[-1]
        raise ValueError(f"cannot resolve !GetAtt {name}.{attr}")

    def __call__(self, node):
        if isinstance(node, list):
            return [self(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Fn::GetAtt":
                name, attr = value if isinstance(value, list) else value.split(".", 1)
                return self.get_att(name, attr)
            if key == "Fn::Sub":
                text, extra = (value[0], self(value[1])) if isinstance(value, list) else (value, {})

                def sub(m):
                    expr = m.group(1)
                    if expr in extra:
                        return str(extra[expr])
                    if "." in expr and not expr.startswith("AWS::"):
                        return self.get_att(*expr.split(".", 1))
                    return str(self.ref(expr))

                return re.sub(r"\$\{([^}!]+)\}", sub, text)
            if key == "Fn::Join":
                return value[0].join(str(v) for v in self(value[1]))
        return {k: self(v) for k, v in node.items()}


# --------------------------------------------------------------------------- stack

def create_or_reuse_stack(cfn, stack: str, body: dict, params: dict[str, str]) -> None:
    try:
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except ClientError:
        status = None
    if status == "CREATE_COMPLETE":
        log(f"stack {stack} exists, reusing it")
        return
    if status is not None:
        log(f"stack {stack} is {status}, recreating it")
        cfn.delete_stack(StackName=stack)
    cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(body),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
    )
    for _ in range(100):
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS"):
            break
        time.sleep(0.1)
    if status != "CREATE_COMPLETE":
        sys.exit(f"bootstrap: stack {stack} ended in {status}")
    log(f"stack {stack} created")


def bucket_settings(s3, resolve: Resolver, bucket: str, props: dict) -> None:
    """Apply what moto's AWS::S3::Bucket ignores, translated to the S3 API's shapes."""
    cors = props.get("CorsConfiguration")
    if cors:
        rules = []
        for rule in resolve(cors["CorsRules"]):
            api = {"AllowedMethods": rule["AllowedMethods"], "AllowedOrigins": rule["AllowedOrigins"]}
            for cfn_key, api_key in [("AllowedHeaders", "AllowedHeaders"), ("ExposedHeaders", "ExposeHeaders"),
                                     ("MaxAge", "MaxAgeSeconds"), ("Id", "ID")]:
                if cfn_key in rule:
                    api[api_key] = int(rule[cfn_key]) if cfn_key == "MaxAge" else rule[cfn_key]
            rules.append(api)
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
        log(f"{bucket}: CORS applied")

    pab = props.get("PublicAccessBlockConfiguration")
    if pab:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=resolve(pab))

    ownership = props.get("OwnershipControls")
    if ownership:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=resolve(ownership))

    notification = props.get("NotificationConfiguration")
    if notification:
        queues = []
        for conf in resolve(notification.get("QueueConfigurations", [])):
            api = {"QueueArn": conf["Queue"], "Events": [conf["Event"]]}
            rules = conf.get("Filter", {}).get("S3Key", {}).get("Rules")
            if rules:
                api["Filter"] = {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}
            queues.append(api)
        unsupported = set(notification) - {"QueueConfigurations"}
        if unsupported:
            log(f"{bucket}: ignoring {sorted(unsupported)} (only SQS targets are wired)")
        # S3 sends an s3:TestEvent message to each queue here, as on AWS.
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": queues})
        log(f"{bucket}: notifications -> {', '.join(q['QueueArn'].rsplit(':', 1)[-1] for q in queues)}")


def table_settings(ddb, resolve: Resolver, table: str, props: dict) -> None:
    ttl = props.get("TimeToLiveSpecification")
    if ttl and str(resolve(ttl.get("Enabled"))).lower() == "true":
        current = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={
                "AttributeName": resolve(ttl["AttributeName"]), "Enabled": True})
        log(f"{table}: TTL on {resolve(ttl['AttributeName'])}")
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr and str(resolve(pitr.get("PointInTimeRecoveryEnabled"))).lower() == "true":
        ddb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})


# --------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True, help="moto server URL, e.g. http://127.0.0.1:5055")
    ap.add_argument("--stack", required=True, help="stack name (lower-case: it prefixes the bucket name)")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    ap.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                    help="template parameter override (repeatable)")
    args = ap.parse_args()

    params = dict(p.split("=", 1) for p in args.parameter)
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                    region_name=args.region)
    clients = {name: session.client(name, endpoint_url=args.endpoint)
               for name in ("cloudformation", "s3", "sqs", "dynamodb", "secretsmanager")}

    template = load_template(args.template)
    body = storage_template(template)
    create_or_reuse_stack(clients["cloudformation"], args.stack, body, params)

    summaries = clients["cloudformation"].get_paginator("list_stack_resources").paginate(StackName=args.stack)
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                for page in summaries for r in page["StackResourceSummaries"]
                if r.get("LogicalResourceId") and r.get("PhysicalResourceId")}
    # moto reports queue URLs on sqs.<region>.amazonaws.com; use the emulator's own URLs.
    for name, res in body["Resources"].items():
        if res["Type"] == "AWS::SQS::Queue" and name in physical:
            physical[name] = clients["sqs"].get_queue_url(
                QueueName=physical[name].rsplit("/", 1)[-1])["QueueUrl"]

    resolve = Resolver(template, params, args.stack, args.region, physical, clients)
    for name, res in body["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::S3::Bucket":
            bucket_settings(clients["s3"], resolve, physical[name], props)
        elif res["Type"] == "AWS::DynamoDB::Table":
            table_settings(clients["dynamodb"], resolve, physical[name], props)

    outputs = {o["OutputKey"]: o["OutputValue"] for o in
               clients["cloudformation"].describe_stacks(StackName=args.stack)["Stacks"][0].get("Outputs", [])}

    def queue_output(key: str) -> str:
        return clients["sqs"].get_queue_url(QueueName=outputs[key].rsplit("/", 1)[-1])["QueueUrl"]

    env = {
        "AWS_ENDPOINT_URL": args.endpoint,
        "AWS_REGION": args.region,
        "AWS_DEFAULT_REGION": args.region,  # what boto3 and the AWS CLI read
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "TABLE_NAME": outputs["TableName"],
        "BUCKET_NAME": outputs["BucketName"],
        "QUEUE_URL": queue_output("QueueUrl"),
        "DLQ_URL": queue_output("DeadLetterQueueUrl"),
    }
    env["EVENT_BUS_NAME"] = outputs["EventBusName"]
    env["CONNECTIONS_TABLE"] = outputs["ConnectionsTableName"]
    env["EVENTS_FAILURE_QUEUE_URL"] = queue_output("EventsFailureQueueUrl")
    if "WebhookQueueUrl" in outputs:
        env["WEBHOOK_QUEUE_URL"] = queue_output("WebhookQueueUrl")
        env["WEBHOOK_SECRET_ARN"] = webhook_secret(clients["secretsmanager"], args.stack)
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")


def webhook_secret(sm, stack: str) -> str:
    """The stack's webhook secret, as the template's GenerateSecretString makes it (32 letters
    and digits), created here: moto's CloudFormation ignores AWS::SecretsManager::Secret."""
    name = f"{stack}-webhook-secret"
    try:
        return sm.describe_secret(SecretId=name)["ARN"]
    except ClientError:
        value = sm.get_random_password(PasswordLength=32, ExcludePunctuation=True)["RandomPassword"]
        return sm.create_secret(Name=name, SecretString=value)["ARN"]


if __name__ == "__main__":
    main()
