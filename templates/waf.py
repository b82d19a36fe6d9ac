"""waf: a regional web ACL in front of the load balancer: AWS managed rule groups (IP
reputation, common rule set, known bad inputs, SQL injection), a rate limit per client IP,
a count-only mode for a first rollout, and request logging. Optional per environment."""

from troposphere import Equals, If, Sub, Template
from troposphere.wafv2 import (
    AllowAction,
    DefaultAction,
    LoggingConfiguration,
    LoggingConfigurationFieldToMatch,
    ManagedRuleGroupStatement,
    OverrideAction,
    RateBasedStatement,
    SingleHeader,
    Statement,
    VisibilityConfig,
    WebACL,
    WebACLAssociation,
    WebACLRule,
)

from templates import inputs
from templates.common import add_encrypted_log_group, add_outputs, arn, new_template

# Evaluated in this order, after the rate limit; each is an AWS managed rule group.
MANAGED_RULE_GROUPS = [
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesSQLiRuleSet",
]
# Blocks even in count-only mode: exploit payloads such as Log4Shell's have no legitimate use,
# so a first rollout gains nothing by only counting them.
ALWAYS_BLOCKING = {"AWSManagedRulesKnownBadInputsRuleSet"}


def visibility(metric_name):
    return VisibilityConfig(CloudWatchMetricsEnabled=True, SampledRequestsEnabled=True, MetricName=metric_name)


def build() -> Template:
    t = new_template(
        "StartupWebApp waf: regional web ACL with AWS managed rules and a per-IP rate limit on the ALB, logging to a "
        "log group with the KMS key that encrypts it."
    )
    p = {name: inputs.add(t, name) for name in ["NamePrefix", "WafRateLimit", "WafCountOnly", "LogRetentionDays", "LoadBalancerArn"]}
    t.add_condition("CountOnly", Equals(p["WafCountOnly"].ref(), "true"))

    rules = [
        WebACLRule(
            Name="RateLimitPerIp",
            Priority=0,
            Statement=Statement(RateBasedStatement=RateBasedStatement(Limit=p["WafRateLimit"].ref(), AggregateKeyType="IP")),
            Action=If("CountOnly", {"Count": {}}, {"Block": {}}),
            VisibilityConfig=visibility("RateLimitPerIp"),
        )
    ]
    for priority, group in enumerate(MANAGED_RULE_GROUPS, start=1):
        rules.append(
            WebACLRule(
                Name=group,
                Priority=priority,
                Statement=Statement(ManagedRuleGroupStatement=ManagedRuleGroupStatement(VendorName="AWS", Name=group)),
                OverrideAction=OverrideAction(**{"None": {}}) if group in ALWAYS_BLOCKING else If("CountOnly", {"Count": {}}, {"None": {}}),
                VisibilityConfig=visibility(group),
            )
        )
    acl = t.add_resource(
        WebACL(
            "WebAcl",
            Name=Sub("${NamePrefix}-web-acl"),
            Scope="REGIONAL",
            Description="StartupWebApp: managed rules and a per-IP rate limit in front of the ALB",
            DefaultAction=DefaultAction(Allow=AllowAction()),
            Rules=rules,
            VisibilityConfig=visibility(Sub("${NamePrefix}-web-acl")),
        )
    )
    t.add_resource(WebACLAssociation("WebAclAssociation", ResourceArn=p["LoadBalancerArn"].ref(), WebACLArn=acl.get_att("Arn")))
    # WAF takes only log groups named aws-waf-logs-*, by their ARN without the trailing ":*".
    log_group = add_encrypted_log_group(t, "aws-waf-logs-${NamePrefix}", p["LogRetentionDays"])
    t.add_resource(
        LoggingConfiguration(
            "WebAclLogging",
            ResourceArn=acl.get_att("Arn"),
            LogDestinationConfigs=[arn("logs", "log-group:${LogGroup}")],
            RedactedFields=[
                LoggingConfigurationFieldToMatch(SingleHeader=SingleHeader(Name="authorization")),
                LoggingConfigurationFieldToMatch(SingleHeader=SingleHeader(Name="cookie")),
            ],
        )
    )
    add_outputs(
        t,
        {
            "WebAclArn": (acl.get_att("Arn"), "ARN of the web ACL."),
            "WafLogGroupName": (log_group.ref(), "Log group of the WAF's request logs."),
        },
    )
    return t
