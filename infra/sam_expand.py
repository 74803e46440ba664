#!/usr/bin/env python3
"""template.yaml as CloudFormation receives it after the SAM transform, for the checks that
must see what SAM adds (roles and their managed policies, the API's stage, permissions):
checkov in `make test` and tests/test_template.py.

Usage: infra/sam_expand.py TEMPLATE OUT.json [Param=Value ...]
"""
from __future__ import annotations

import copy
import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# The managed policies SAM may attach, by name (the transform asks a loader for their ARNs).
MANAGED = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for path, name in [
        ("service-role/", "AWSLambdaBasicExecutionRole"),
        ("service-role/", "AWSLambdaSQSQueueExecutionRole"),
        ("", "AWSXrayWriteOnlyAccess"),
        ("", "AWSXRayDaemonWriteAccess"),
    ]
}


class _Policies:
    def load(self) -> dict[str, str]:
        return MANAGED


def expand(template: dict, parameters: dict[str, str] | None = None) -> dict:
    """The transform of `template` with these parameter values (defaults for the others)."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    tpl = copy.deepcopy(template)
    # As `sam package` leaves it: each function's code in S3.
    for resource in tpl["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifacts/code.zip"
    return transform(tpl, parameters or {}, _Policies())


if __name__ == "__main__":
    source, out, *pairs = sys.argv[1:]
    params = dict(p.split("=", 1) for p in pairs)
    json.dump(expand(yaml_parse(open(source).read()), params), open(out, "w"), indent=1)
