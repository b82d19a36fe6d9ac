"""The refusals a deploy makes before it changes anything that read the layer's values and its change
set: before a stack's first create, and before a change set runs (refuse_before_execute: a stateful
replacement without ALLOW_REPLACE=1, among others). A stack of our name this tool did not make is
refused where it is read (reading.py, describe). Each reads what it needs through the Deployer (its
clients, its one read of each stack) and raises Failure saying what was refused and what to do; None:
the run may go on."""

import json

import templates
from scripts.deploy import purge, text, zone
from scripts.deploy.aws import AWS_ERRORS, cli, error_code
from scripts.deploy.failure import Failure, Refused, RefusedAhead
from scripts.deploy.text import parameter_values
from templates.alarms import reads_container_insights, without_data
from templates.inputs import TRAFFIC_SHIFTING
from templates.params import SANDBOX_ENV
from templates.resolver import Resolver, assertions, holds_unknown

# The checks that look once a run, ahead at every layer it deploys (Deployer.checked): at its first layer,
# or, for CREATES, at its first create.
CREATES, RENAMES, ACCOUNTS = "creates", "renames", "accounts"
IMAGES, SECRET_KEYS, SUBNETS, CLUSTER = "images", "secret keys", "subnets", "cluster"


def refuse_before_execute(deployer, layer, change_set, exists, allow_replace, left, again=None):
    """The change set may run: no resource replaced under the name it has, no unintended stateful
    replacement, no log group made under a name another holds, no production traffic sent back to a
    target group that may run no task. `left`: what the refusal leaves (the change set, or nothing); `again`: the
    command that runs this change set once the way past is taken (a reviewed one's make execute), where a make deploy
    of its layer would end it; None for a deploy's own."""
    same_name = text.custom_named_replacements(change_set, layer.custom_named)
    if same_name:
        raise Refused(
            f"error: refused: CloudFormation cannot replace a resource under the name it has, and the update would fail and roll back: "
            f"{', '.join(same_name)}; {left}; give it a new name in the same change (a new NamePrefix renames them all), or "
            f"{deployer.destroy_and_deploy_again(layer.name)}"
        )
    if exists:
        refuse_deleting_a_protected_load_balancer(deployer, layer, change_set, left)
    risky = text.stateful_changes(change_set)
    if risky and not allow_replace:
        raise Refused(
            f"error: refused: the change set replaces or removes stateful resources: {', '.join(risky)}; "
            f"{left}; if that is intended, rerun with ALLOW_REPLACE=1 (--allow-replace)"
        )
    refuse_taken_log_group_names(deployer, layer, change_set, left)  # once the replacement is wanted: it may ask to delete logs
    refuse_a_cluster_the_service_cannot_use(deployer, layer, change_set, left)  # make execute's: a deploy's looked first
    if exists and not deployer.allow_traffic_reset:
        refuse_moving_shifted_traffic(deployer, layer, change_set, left, again=again)
    if exists:
        refuse_removing_rules_in_use(deployer, layer, change_set, left, again)


def refusal(layer, about, message, kind=Failure) -> Failure:
    """The refusal of a look at the run's layers made at its first: RefusedAhead where none of the layers it is about
    is `layer` (the run's summary then says a look at the layers it deploys next stopped it before that layer's change
    set, not that the layer was refused), else kind: Refused where what the values change is refused, Failure where a
    value is wrong."""
    return kind(message) if layer.name in about else RefusedAhead(message)


def refuse_deleting_a_protected_load_balancer(deployer, layer, change_set, left) -> None:
    """An update that replaces or removes a load balancer whose deletion protection is on: ELB refuses
    to delete it (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#deletion-protection),
    and CloudFormation, after three attempts, drops the old one from the stack and reports the update
    complete (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-monitor-stack.html):
    it and the security group it holds would run on, billed, in no stack. DeletionProtection false in
    the same change does not help: that is the new load balancer's setting, not the old one's."""
    going = [
        rc["LogicalResourceId"]
        for rc in (change.get("ResourceChange", {}) for change in change_set.get("Changes", []))
        if rc.get("ResourceType") == "AWS::ElasticLoadBalancingV2::LoadBalancer"
        and (text.replaced(rc) or rc.get("Action") in text.STATEFUL_ACTIONS)
    ]
    protected = purge.deletion_protected(deployer, [layer.stack]) if going else {}
    if protected:
        raise Refused(
            f"error: refused: the change set replaces or removes {', '.join(going)}, a load balancer that {protected[layer.stack].said}, "
            "which CloudFormation cannot delete: it would leave it running outside the stack and "
            f"report the update complete; {left}; {protection_off_first(deployer, layer, protected[layer.stack])}"
        )


def protection_off_first(deployer, layer, protection) -> str:
    """The way to replace or remove a load balancer whose deletion protection is on (purge.deletion_protected)."""
    return f"{purge.protection_off(deployer, layer.name, protection)}; then this change" + (
        " with DeletionProtection: true, which protects the new load balancer" if protection.arn is None else ""
    )


def refuse_blocked_creates(deployer, layer, then=None, even_one=False) -> None:
    """At a run's first create, before it: refuse while a name a create of the run needs (a log group)
    is held, naming every one at once; each would fail its create and roll it back, one layer after
    another. Held by what a destroyed stack of the layer retained (purge.blocking), or by a log group
    in no stack: the old one an update to a new NamePrefix kept, or one made by hand. A run that
    creates nothing makes no call for it. then: what the note of a failed look says comes next
    (default: the create); even_one: log groups in no stack looked for where one layer is created too
    (make diff: it has no change set to find them in)."""
    if CREATES in deployer.checked:
        return
    deployer.checked.add(CREATES)
    creates = layers_ahead(deployer, layer)
    try:
        blocked = purge.blocking(deployer, {each.stack: set(custom_names(deployer, each).values()) for each in creates})
    except AWS_ERRORS as error:  # only a look ahead: the create itself says what to do if a name is taken
        deployer.say(
            f"  note: what destroyed stacks retained could not be listed ({error_code(error)}); {then or f'creating {layer.stack}'}"
        )
        return
    # Each destroyed stack of the name lists it: a layer destroyed and purged again and again, then one made by hand.
    blocked = list({(item.kind, item.physical_id): item for item in blocked}.values())
    loose = loose_log_groups(deployer, creates, {item.physical_id for item in blocked}, even_one)
    if not blocked and not loose:
        return
    order = [each.stack for each in creates]
    blocked.sort(key=lambda item: order.index(item.stack))
    purgeable = [item for item in blocked if not item.foreign]
    layers = ", ".join(layer.name for layer in creates if any(item.stack == layer.stack for item in purgeable))
    held, advice = [], []
    if blocked:
        held.append(
            "what destroyed stacks retained still holds names their creates need: "
            + "; ".join(f"{item.stack}: {item.label}" + held_since(item) for item in blocked)
        )
    if loose:
        held.append(
            "log groups no destroyed stack of theirs retained hold names their creates need: "
            + "; ".join(f"{stack}: {name}" for stack, name in loose)
        )
    if purgeable:
        # A failed first create's stack (ROLLBACK_COMPLETE), empty, goes too: a deploy would only recreate it.
        failed = [
            each.name
            for each in creates
            if any(item.stack == each.stack for item in purgeable)
            and (deployer.describe(each.stack, refuse_foreign=False) or {}).get("StackStatus") == "ROLLBACK_COMPLETE"
        ]
        first = (
            f"make destroy ENV={deployer.env} STACK=<layer> for {', '.join(failed)} (a failed first create: its empty stack "
            "goes too), then "
            if failed
            else ""
        )
        advice.append(
            first
            + (
                f"make purge ENV={deployer.env} STACK={layers} frees what it retained (it lists it and asks first)"
                if "," not in layers
                else f"make purge ENV={deployer.env} STACK=<layer> for {layers} frees what they retained (it lists it and asks first)"
            )
        )
    for item in blocked:
        if item.foreign:  # purge never touches it: only its owner knows whether it may go
            command = purge.free_command(item.kind, item.physical_id, deployer.cli) or "the console"
            why = "as no stack lists it as retained" if item.kept_on_replace else "as that stack did not make it"
            advice.append(f"make purge leaves {item.physical_id}, {why}: delete it yourself if it is not needed: {command}")
    for _, name in loose:
        advice.append(
            f"{name}, if no stack uses it (one an update that renamed its group kept, or one made by hand), you delete yourself once its logs are not needed: "
            + purge.free_command("AWS::Logs::LogGroup", name, deployer.cli)
        )
    about = {each.name for each in creates if any(item.stack == each.stack for item in blocked) or any(s == each.stack for s, _ in loose)}
    raise refusal(
        layer,
        about,
        "error: refused before creating anything: " + "; ".join(held) + ". " + "; ".join(advice) + ", then deploy again",
        Refused,
    )


def held_since(item) -> str:
    if item.kept_on_replace:
        return " (made by a later stack of that name, which kept it when an update replaced it)"
    return " (not made by that stack)" if item.foreign else ""


def loose_log_groups(deployer, creates, named, even_one=False) -> list[tuple[str, str]]:
    """(stack, name) of each log group in no stack of ours that holds a name a create of the run needs,
    but those named (what destroyed stacks retained). Creates: layers with no stack yet (an empty one
    under review, or a failed first create: Deployer.is_create). A run of one layer makes no call: its
    change set is checked before it runs (refuse_taken_log_group_names), which is before anything changes;
    but with even_one (make diff, which makes no change set)."""
    if len(creates) < 2 and not even_one:
        return []
    return [
        (each.stack, name)
        for each in creates
        if deployer.is_create(each.stack)
        for name in log_group_names(deployer, each).values()
        if name not in named and log_group_exists(deployer, name)
    ]


def refuse_an_empty_zone(params_file, env, layers) -> None:
    """Before a deploy or changeset sends anything (and in make diff's looks): a layer that validates its
    certificate by DNS has a hosted zone to do it in."""
    for layer in layers:
        if "ExistingHostedZoneId" in layer.declared and not layer.parameters.get("ExistingHostedZoneId"):
            raise Failure(
                f"error: {params_file}: parameters.ExistingHostedZoneId is empty; {layer.name} validates its "
                "certificate by DNS in the domain's public hosted zone, which works only once the registrar delegates the domain "
                "to the zone's name servers (a zone made with the certificate is not delegated, and its stack would wait 72 hours). "
                f"Run make zone ENV={env}: it finds or creates the zone, prints the name servers to set at the registrar and "
                "waits until DNS answers with them; then set ExistingHostedZoneId to the zone id it prints",
                2,
            )


def refuse_undelegated_domain(deployer, layer, exists):
    """The certificate is validated in an existing zone, of its domain, and only once the domain is
    delegated to it: refuse before CloudFormation would wait hours for a validation that cannot happen.
    Asked at a create, and at an update that changes the domain or the zone (a new certificate, or new
    validation records); on an emulator the zone alone (its name servers are made up)."""
    zone_id, domain = layer.parameters.get("ExistingHostedZoneId"), layer.parameters.get("DomainName")
    if not zone_id:  # refuse_an_empty_zone refuses it before
        return
    if exists:
        running = parameter_values(deployer.describe(layer.stack))
        if (running.get("ExistingHostedZoneId"), running.get("DomainName")) == (zone_id, domain):
            return
    try:
        servers = zone.name_servers(zone.given_zone(deployer.client("route53"), zone_id, domain), zone_id, domain)
    except zone.ZoneError as error:
        raise Failure(f"error: {deployer.params_file}: {error}") from None
    if deployer.resolver is None:
        return
    answered = deployer.resolver(domain)
    if not zone.delegated(servers, answered):
        raise Failure(
            f"error: {domain} is not delegated to hosted zone {zone_id}: public DNS answers {zone.heard_from(answered)}, the registrar must "
            f"list {', '.join(sorted(zone.normal(n) for n in servers))}; ACM could not validate the certificate. "
            f"make zone ENV={deployer.env} prints them and waits for the delegation"
        )


def refuse_a_missing_image(deployer, layer, image_tag) -> None:
    """At a run's first layer, before it changes anything: the image the service layer of the run is
    to run is in its ECR repository (the template's image is the stacks' account's and region's). A
    tag that is not there, a TAG= typo, would fail only minutes into the release, at each new task's
    pull, until the circuit breaker rolls it back. The image the service runs already, from the same
    repository, is not asked for; nor, on an emulator, any.
    https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImages.html"""
    if IMAGES in deployer.checked or not deployer.on_aws:
        return
    deployer.checked.add(IMAGES)
    service = next((each for each in layers_ahead(deployer, layer) if "EcrRepositoryName" in each.parameters), None)
    if service is None:
        return
    repository = service.parameters["EcrRepositoryName"]
    found = deployer.describe(service.stack)
    # A failed first create runs no image: RECREATE=1 deletes it and deploys params' ImageTag.
    running = {} if deployer.is_create(service.stack) else parameter_values(found)
    tag = deployer.image_to_deploy(service, image_tag)
    if not tag or (running.get("ImageTag"), running.get("EcrRepositoryName")) == (tag, repository):
        return
    missing = missing_image(deployer, repository, tag)
    if missing == "image":
        raise Failure(f"{not_in_ecr(deployer, repository, tag)}; no change set was made")
    if missing == "repository":
        raise Failure(
            f"error: {deployer.params_file}: parameters.EcrRepositoryName: no ECR repository {repository} in the stacks' "
            "account and region; no change set was made"
        )


def missing_image(deployer, repository, tag, registry_id=None) -> str | None:
    """What ECR lacks of repository:tag (in the account registry_id, else the caller's): "image",
    "repository", or None (it holds it, or could not be asked: a deploy role made before the ci layer
    allowed ecr:DescribeImages, or another account's registry; said, and the run goes on).
    https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImages.html"""
    account = {"registryId": registry_id} if registry_id else {}
    try:
        deployer.client("ecr").describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}], **account)
    except AWS_ERRORS as error:
        code = error_code(error)
        if code == "ImageNotFoundException":
            return "image"
        if code == "RepositoryNotFoundException":
            return "repository"
        if code not in ("AccessDeniedException", "AccessDenied"):
            raise
        deployer.say(f"note: could not check that image {repository}:{tag} is in ECR (ecr:DescribeImages denied); going on")
    return None


def not_in_ecr(deployer, repository, tag) -> str:
    return (
        f"error: image {repository}:{tag} is not in ECR: push it first, or name a tag the repository holds "
        f"({deployer.cli} ecr describe-images --repository-name {repository})"
    )


def say_when_container_insights_is_off(deployer, layer, wired) -> None:
    """Before a change set of a layer whose alarms read ECS/ContainerInsights metrics is shown: a
    cluster with Container Insights off publishes none of them, and those alarms (TreatMissingData
    notBreaching) never alarm. A note, never a refusal; said only when the layer changes, and only for
    a cluster whose own setting is "disabled" (one that lists none follows the account's setting,
    which is not read). The cluster is the one the alarms name (ServiceClusterName, wired from the
    service layer).
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeClusters.html
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ClusterSetting.html
    The command it prints, UpdateCluster with settings, is one the sandbox answers too (moto lacks
    UpdateClusterSettings): https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateCluster.html"""
    resources = json.loads(layer.template).get("Resources", {})
    readers = {name: resource for name, resource in resources.items() if reads_container_insights(resource)}
    cluster = wired.get("ServiceClusterName")
    if not readers or not cluster:
        return
    try:
        found = deployer.client("ecs").describe_clusters(clusters=[cluster], include=["SETTINGS"]).get("clusters", [])
    except AWS_ERRORS as error:
        deployer.say(f"note: could not read whether cluster {cluster} has Container Insights on ({error_code(error)}); going on")
        return
    settings = {setting.get("name"): setting.get("value") for each in found for setting in each.get("settings", [])}
    if settings.get("containerInsights") == "disabled":
        said = {}  # what no data makes of an alarm -> the alarms it says so of
        for name in sorted(readers):
            said.setdefault(without_data(readers[name]), []).append(name)
        deployer.say(
            f"note: cluster {cluster} has Container Insights off, and its metrics are read by "
            + "; ".join(f"{', '.join(names)}: {text}" for text, names in said.items()),
            f"  turn it on: {deployer.cli} ecs update-cluster --cluster {cluster} --settings name=containerInsights,value=enabled",
        )


def refuse_a_secret_of_another_account(deployer, layer) -> None:
    """At a run's first layer, before it changes anything: a DatabaseSecretArn (of any layer the run
    deploys) in another account than the one the stacks go to. Another account's secret is read
    only with a customer managed key the reader may use ("You must also allow the identity to use
    the KMS key that the secret is encrypted with"), and the service's execution role is given no
    KMS key: every task would fail to start, minutes into the release, not at the change set.
    https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_examples_cross.html
    params/prod.yaml ships an example ARN to replace. The account: a stack this run read (its
    StackId); while none is known (the environment's first create), the check waits for the next
    layer, or, for a layer that has the secret itself, asks GetCallerIdentity. A run without the
    secret makes no call."""
    if ACCOUNTS in deployer.checked:
        return
    secrets = [
        (each, each.parameters["DatabaseSecretArn"]) for each in layers_ahead(deployer, layer) if "DatabaseSecretArn" in each.parameters
    ]
    if secrets and not any(deployer.stacks.values()) and not any(each is layer for each, _ in secrets):
        return  # asked again at the next layer, once this one's stack is there
    account = deployer.account() if secrets else None
    deployer.checked.add(ACCOUNTS)
    theirs = sorted({arn.split(":")[4] for _, arn in secrets} - {account})  # SECRET_ARN (templates/inputs.py) names the account
    if theirs:
        raise refusal(
            layer,
            {each.name for each, _ in secrets},
            f"error: {deployer.params_file}: parameters.DatabaseSecretArn is in account {', '.join(theirs)}, but the stacks go to "
            f"account {account}: the service's execution role has no KMS permission, which reading another account's secret "
            f"needs (its customer managed key), so no task would start; {deployer.nothing_changed(layer.name)}. Set the ARN of the secret in account {account}, "
            "make templates, and deploy again",
        )


def refuse_a_secret_the_tasks_cannot_read(deployer, layer) -> None:
    """At a run's first layer, before it changes anything: the database secret of the run's service
    layer, when the service does not use it already, is encrypted with the AWS managed key. The
    service's execution role, like every role under the permissions boundary, may use no KMS key, and
    ECS reads a secret encrypted with a customer managed key only with kms:Decrypt on that key
    (task_execution_IAM_role.html, "Required IAM permissions for Amazon ECS secrets"): every task would
    fail to start, minutes into the release. DescribeSecret leaves KmsKeyId out for aws/secretsmanager,
    but a secret made in the console names even that key by its id (API_DescribeSecret.html), so
    DescribeKey's KeyManager decides; a key of another account is a customer managed one (the AWS
    managed key serves its own account only: API_UpdateSecret.html). The secret is looked up in the
    region its ARN names, which may be another than the stacks' (ECS reads a secret of another region
    by its full ARN, specifying-sensitive-data.html), where a client of the stacks' region finds no
    such secret. On AWS only, as the image check;
    where a call is not allowed or fails, a note, and the run goes on. What it cannot see: a key
    changed by an UpdateSecret that could not re-encrypt the existing versions (the caller lacked
    kms:Decrypt on the old key), which DescribeSecret then no longer names.
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html
    https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html
    https://docs.aws.amazon.com/secretsmanager/latest/userguide/manage_update-encryption-key.html
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/specifying-sensitive-data.html"""
    if SECRET_KEYS in deployer.checked or not deployer.on_aws or ACCOUNTS not in deployer.checked:
        return  # until refuse_a_secret_of_another_account knows the account: asked again at the next layer
    deployer.checked.add(SECRET_KEYS)
    service = next((each for each in layers_ahead(deployer, layer) if "DatabaseSecretArn" in each.parameters), None)
    if service is None:
        return
    arn = service.parameters["DatabaseSecretArn"]
    if deployer.settled_values(service.stack).get("DatabaseSecretArn") == arn:
        return
    where = f"{deployer.params_file}: parameters.DatabaseSecretArn"
    region = arn.split(":")[3]  # SECRET_ARN (templates/inputs.py); its key, by an id, is of the secret's region
    try:
        key = deployer.client("secretsmanager", region).describe_secret(SecretId=arn).get("KmsKeyId")
        if key and key.startswith("arn:") and key.split(":")[4] != arn.split(":")[4]:
            manager = "CUSTOMER"  # another account's key
        else:
            manager = deployer.client("kms", region).describe_key(KeyId=key)["KeyMetadata"].get("KeyManager") if key else "AWS"
    except AWS_ERRORS as error:
        # DescribeSecret's "Secrets Manager can't find the resource that you asked for" (API_DescribeSecret, above); KMS's
        # DescribeKey says NotFoundException instead, which is the note below.
        if error_code(error) == "ResourceNotFoundException":  # asked in the secret's region, of the stacks' account (checked)
            stacks_region = deployer.cf.meta.region_name
            there = "and region" if region == stacks_region else f"in {region}, the region the ARN names (the stacks go to {stacks_region})"
            raise refusal(
                layer,
                {service.name},
                f"error: {where}: no secret {arn} in the stacks' account {there}; {deployer.nothing_changed(layer.name)}",
            ) from None
        # where the ARN names another region than the stacks' (one the account has not enabled, or a policy keeps the role out of), named
        there = "" if region == deployer.cf.meta.region_name else f" in {region}, the region the ARN names"
        deployer.say(f"  note: the database secret {arn} and its KMS key could not be read{there} ({error_code(error)}); going on")
        return
    if manager != "AWS":
        raise refusal(
            layer,
            {service.name},
            f"error: {where}: the secret is encrypted with the customer managed KMS key {key}, which the service's roles may not "
            f"use (their permissions boundary allows no KMS key), so no task could read it and none would start; {deployer.nothing_changed(layer.name)}. "
            "Encrypt it with the AWS managed key (the key a secret gets when none is given): as someone who may use the current key "
            f"(kms:Decrypt; without it the versions stay encrypted with it), {cli(region)} secretsmanager update-secret "
            f"--secret-id {arn} --kms-key-id alias/aws/secretsmanager, then deploy again",
        )


def refuse_subnets_the_layers_cannot_use(deployer, layer) -> None:
    """At a run's first layer, on AWS, before it changes anything: the network inputs of the run's
    layers agree, where a layer's stack does not use them already or VpcId changes: the subnets and
    the backend security group are in VpcId (the load balancer's security group is made there), as
    "All specified subnets and security groups must be from the same VPC" (API_NetworkConfiguration),
    and the load balancer's subnets are in two Availability Zones ("subnets from at least two
    Availability Zones", "only one subnet per Availability Zone": API_CreateLoadBalancer); each exists.
    Otherwise the layer's create fails minutes in and rolls back (a first create then needs
    RECREATE=1). One DescribeSubnets and one DescribeSecurityGroups, by filter (an id that does not
    exist is left out of the answer, not an error); where a call is not allowed, a note, and the run
    goes on.
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_NetworkConfiguration.html
    https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSubnets.html"""
    if SUBNETS in deployer.checked or not deployer.on_aws:
        return
    deployer.checked.add(SUBNETS)
    alb_stack = templates.stack_name(deployer.env, "alb")
    networked = ("PublicSubnetIds", "PrivateSubnetIds", "BackendSecurityGroupId")
    ahead = [each for each in layers_ahead(deployer, layer) if any(name in each.parameters for name in networked)]
    if not ahead:  # cert-dns, ci, ...: nothing read
        return
    deployed_vpc = deployer.settled_values(alb_stack).get("VpcId")
    vpc = next((each.parameters["VpcId"] for each in ahead if "VpcId" in each.parameters), None)
    vpc_from = "VpcId"
    if vpc is None:  # a run without the alb layer: the deployed one's
        vpc, vpc_from = deployed_vpc, "the deployed alb layer's VpcId"
    moved = vpc != deployed_vpc
    given = {}  # parameter -> its ids, where new to the layer's stack (or VpcId changes)
    for each in ahead:
        running = deployer.settled_values(each.stack)
        for name in networked:
            if name in each.parameters and (moved or running.get(name) != each.parameters[name]):
                given[name] = [i for i in each.parameters[name].split(",") if i]
    if not given:
        return
    subnet_ids = sorted({i for name, ids in given.items() if name != "BackendSecurityGroupId" for i in ids})
    ec2 = deployer.client("ec2")
    try:
        found = (
            {s["SubnetId"]: s for s in ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": subnet_ids}])["Subnets"]}
            if subnet_ids
            else {}
        )
        groups = given.get("BackendSecurityGroupId", [])
        found |= (
            {g["GroupId"]: g for g in ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": groups}])["SecurityGroups"]}
            if groups
            else {}
        )
    except AWS_ERRORS as error:
        deployer.say(f"  note: the subnets and the backend security group could not be read ({error_code(error)}); going on")
        return
    problems = []
    for name, ids in sorted(given.items()):
        if not ids:  # only in a hand-edited output/<env>/<layer>.json: params are checked
            problems.append(f"parameters.{name} is empty")
        missing = [i for i in ids if i not in found]
        elsewhere = [f"{i} (in {found[i]['VpcId']})" for i in ids if i in found and vpc and found[i]["VpcId"] != vpc]
        if missing:
            problems.append(f"parameters.{name}: no {', '.join(missing)} in the stacks' account and region")
        if elsewhere:
            problems.append(f"parameters.{name}: {', '.join(elsewhere)} not in {vpc_from} {vpc}")
        zones = {}  # Availability Zone -> the public subnets in it
        for i in ids if name == "PublicSubnetIds" else []:
            if i in found:
                zones.setdefault(found[i]["AvailabilityZone"], []).append(i)
        shared = {zone: subnets for zone, subnets in zones.items() if len(subnets) > 1}
        if shared:
            problems.append(
                f"parameters.{name}: "
                + "; ".join(f"{', '.join(subnets)} share the Availability Zone {zone}" for zone, subnets in sorted(shared.items()))
                + "; the load balancer takes one subnet per zone, in at least two"
            )
    if problems:
        raise refusal(
            layer,
            {each.name for each in ahead},
            f"error: {deployer.params_file}: {'; '.join(problems)}; {deployer.nothing_changed(layer.name)}",
        )


def refuse_a_cluster_the_service_cannot_use(deployer, layer, change_set=None, left=None) -> None:
    """At a run's first layer, before it changes anything: the cluster the service layer is given (ClusterName: the
    Phase 5.14 cluster, which no layer makes), where the layer's stack does not use it already, is found, and not
    deleted, in the stacks' account and region. ECS creates no service in a cluster it does not find ("The specified cluster wasn't
    found": API_CreateService) or in a deleted one (INACTIVE: "The cluster has been deleted", API_Cluster): the
    service's create fails minutes in and rolls back (a first create then needs RECREATE=1); the sandbox made it in
    a deleted one. One DescribeClusters (a cluster it does not find is a failure "MISSING" of its answer, not an
    error); where it is not allowed (the CI deploy role reads its own ClusterName's only), a note, and the run goes on.
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeClusters.html
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Cluster.html
    On AWS and the sandbox (whose seed makes the cluster), not on another endpoint, as the subnets' look.
    change_set: make execute's, whose values are looked at (a deploy looked before it made its own: checked)."""
    if CLUSTER in deployer.checked or not (deployer.on_aws or deployer.env == SANDBOX_ENV):
        return
    deployer.checked.add(CLUSTER)
    asked = [(layer, parameter_values(change_set))] if change_set else [(each, each.parameters) for each in layers_ahead(deployer, layer)]
    given = sorted(
        {
            values["ClusterName"]
            for each, values in asked
            if each.name == "service"
            and "ClusterName" in values
            and deployer.settled_values(each.stack).get("ClusterName") != values["ClusterName"]
        }
    )
    if not given:
        return
    try:
        answer = deployer.client("ecs").describe_clusters(clusters=given)
    except AWS_ERRORS as error:
        deployer.say(f"  note: cluster {', '.join(given)} could not be read ({error_code(error)}); going on")
        return
    # Both lists are optional in ECS's answer ("Any failures associated with the call": a cluster not found is one, reason
    # MISSING): one without either says nothing of the cluster, not that it is not found.
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeClusters.html
    if "clusters" not in answer and "failures" not in answer:
        deployer.say(f"  note: cluster {', '.join(given)} could not be read (its answer named no clusters); going on")
        return
    found = answer.get("clusters", [])
    # Not found, or deleted (INACTIVE): its other statuses are its capacity providers', which a Fargate service does not use
    status = {each.get("clusterName"): each.get("status") for each in found}
    unusable = [
        f"cluster {name} {'is not found' if name not in status else f'is {status[name]}'}"
        for name in given
        if status.get(name, "INACTIVE") == "INACTIVE"
    ]
    if unusable:
        way = (
            f"the sandbox's seed makes the cluster {deployer.params_file} names as it starts: make sandbox-stop && make sandbox starts "
            "the sandbox afresh with it"
            if deployer.env == SANDBOX_ENV
            else f"name the Phase 5.14 cluster ({deployer.cli} ecs list-clusters lists them)"
        )
        where = (
            f"change set {change_set['ChangeSetName']}: ClusterName" if change_set else f"{deployer.params_file}: parameters.ClusterName"
        )
        raise refusal(
            layer,
            {"service"},
            f"error: {where}: {'; '.join(unusable)} in the stacks' account and region "
            f"({deployer.cf.meta.region_name}), and ECS creates no service in it: {way}; {left or deployer.nothing_changed(layer.name)}",
        )


def refuse_taken_log_group_names(deployer, layer, change_set, left):
    """A change set that makes a log group under a new name (a replacement, an addition) fails there
    and rolls back while a log group of that name is in the account: one an earlier replacement
    kept (UpdateReplacePolicy Retain; a NamePrefix changed and then changed back), or one made
    by hand. Named before anything runs, with the command that frees it. A change set that makes
    no log group makes no call for it."""
    made = [
        rc
        for rc in (change.get("ResourceChange", {}) for change in change_set.get("Changes", []))
        if rc.get("ResourceType") == "AWS::Logs::LogGroup" and (text.replaced(rc) or rc.get("Action") == "Add")
    ]
    names = custom_names(deployer, layer, parameter_values(change_set)) if made else {}  # make execute: the change set's values
    making = [
        (rc["LogicalResourceId"], names[rc["LogicalResourceId"]])
        for rc in made
        if names.get(rc["LogicalResourceId"], rc.get("PhysicalResourceId")) != rc.get("PhysicalResourceId")
    ]
    taken = [
        why
        for logical_id, name in making
        if (why := taken_log_group(deployer, layer.stack, change_set.get("StackId", ""), logical_id, name))
    ]
    if taken:
        raise Refused(
            f"error: refused: the change set makes a log group under a name another one holds, and would fail there and roll "
            f"back; {left}:{each_on_its_line(taken)}\n{FREE_THE_NAMES}"
        )


def refuse_taken_names_ahead(deployer, layer) -> None:
    """At a run's first layer, before it changes anything: refuse while a layer of the run would make
    a log group under a new name (a NamePrefix changed, or the template's name) that another log
    group holds, naming every one at once. Each change set is refused there too
    (refuse_taken_log_group_names), but in a run of every layer the layers before it would have been
    updated by then: a new load balancer, and the layers after it still on the old one. The names
    the stacks have are read (DescribeStackResources, one call per deployed stack of the run that
    has log groups); a deploy of one layer needs no look ahead. Only with --allow-replace (a renamed
    log group is a replacement, refused without it): nobody is asked to delete logs for a
    replacement they may not want, and a plain deploy makes no call for it."""
    if RENAMES in deployer.checked:
        return
    deployer.checked.add(RENAMES)
    ahead = layers_ahead(deployer, layer)
    if len(ahead) < 2:
        return  # one layer: its change set is checked before it runs, which is before anything changes
    taken, about = [], set()
    for each in ahead:
        found = deployer.describe(each.stack, refuse_foreign=False)  # a foreign one is refused when its turn comes
        named = log_group_names(deployer, each)
        if not named or deployer.is_create(each.stack) or deployer.foreign(found):
            continue  # a create: refuse_blocked_creates looks
        try:
            # the first 100 resources only: tests/test_layers.py keeps every layer below that
            resources = deployer.cf.describe_stack_resources(StackName=each.stack)["StackResources"]
        except AWS_ERRORS as error:  # only a look ahead: each change set is checked again before it runs
            deployer.say(
                f"  note: the resources of {each.stack} could not be read ({error_code(error)}); its log group names are checked at its turn"
            )
            continue
        now = {r["LogicalResourceId"]: r.get("PhysicalResourceId") for r in resources}
        for logical_id, name in named.items():
            if now.get(logical_id) != name and (why := taken_log_group(deployer, each.stack, found["StackId"], logical_id, name)):
                taken.append(f"{each.name}: {why}")
                about.add(each.name)
    if taken:
        raise refusal(
            layer,
            about,
            f"error: refused before changing anything{' more' if deployer.recreated else ''}: a layer's update would make a log "
            "group under a name another one holds, "
            f"and fail there and roll back; {deployer.nothing_changed(layer.name)}:{each_on_its_line(taken)}\n{FREE_THE_NAMES}",
            Refused,
        )


def layers_ahead(deployer, layer) -> list:
    """The layers this run deploys from `layer` on (one deploy: that layer)."""
    names = [each.name for each in deployer.run_layers]
    return deployer.run_layers[names.index(layer.name) :] if layer.name in names else [layer]


FREE_THE_NAMES = (
    "Free each name with its `free it` command once its logs are not needed, or keep the names the stack has (the "
    "NamePrefix it was deployed with), then deploy again"
)


def each_on_its_line(taken) -> str:
    """The names taken, one a line, and the command that frees each on a line of its own under it: each carries
    commands (an export, a deletion) too long to read run together, and the deletion is the one not to paste first."""
    return "".join("\n  " + why.replace("\n", "\n  ") for why in taken)


def taken_log_group(deployer, stack, stack_id, logical_id, name, say=None) -> str | None:
    """None while no log group holds `name`; else whose it is and what it holds (purge's look), then, on a line of its
    own, the command that frees it.
    say: where a name that could not be checked is said (the deployer's say by default)."""
    item = purge.Retained(stack, stack_id, logical_id, "AWS::Logs::LogGroup", name)
    try:
        purge.inspect(deployer, item, {})
    except AWS_ERRORS as error:
        item.facts, item.note = None, error_code(error)
    if item.gone:
        return None
    if item.facts is None and not log_group_exists(deployer, name, say):  # unread: is it there at all?
        return None
    whose = (
        f"whose, unknown: {item.note.removeprefix('left: ')}"
        if item.facts is None
        else "not made by this stack"
        if item.foreign
        else f"kept by an earlier replacement in this stack; {item.note}"
    )
    return f"{logical_id} needs {name}, which is taken ({whose})\n  free it: {purge.free_command(item.kind, name, deployer.cli)}"


def refuse_moving_shifted_traffic(
    deployer, layer, change_set, left, rerun="rerun with ALLOW_TRAFFIC_RESET=1 (--allow-traffic-reset)", again=None
):
    """A BLUE_GREEN, CANARY or LINEAR release leaves the listener rules' weights where ECS moved
    traffic, often all on the alternate target group. Three changes would send production
    traffic back to the primary target group, which may then run no task: an alb change set that
    rewrites a rule (CloudFormation writes it as the template states it) or removes it (the
    listener's default forwards to the primary), and a service change set that switches to
    ROLLING (its new tasks register in the primary, and the old ones go). ECS registers a
    release's tasks with the target group its stage calls for and moves the weights itself:
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb-resources-for-blue-green.html
    and CloudFormation, not told, rewrites them: https://github.com/aws/aws-cdk/issues/36649"""
    changed = text.listener_rule_changes(change_set)
    switching = layer.name == "service" and switches_to_rolling(deployer, layer, change_set)
    if switching:
        changed = [
            ("ProductionListenerRule", deployer.outputs(templates.stack_name(deployer.env, "alb")).get("ProductionListenerRuleArn"), "kept")
        ]
    changed = [(name, arn, action) for name, arn, action in changed if arn]
    if not changed:
        return
    primary = deployer.outputs(templates.stack_name(deployer.env, "alb")).get("TargetGroupArn")
    rules = deployer.client("elbv2").describe_rules(RuleArns=[arn for _, arn, _ in changed])["Rules"]
    shifted = {rule["RuleArn"]: text.shifted_weights(rule, primary) for rule in rules}
    moving = [f"{name} ({action}; now {', '.join(shifted[arn])})" for name, arn, action in changed if shifted.get(arn)]
    if not moving:
        return
    if layer.name == "alb" and all(action == "Remove" for _, _, action in changed) and runs_rolling(deployer):
        # Back to ROLLING, the service's tasks register in the primary target group: the rules' weights send
        # traffic where none runs, and removing them is what puts it back on the tasks.
        deployer.say(
            f"  note: the listener rules it removes send traffic to the alternate target group ({'; '.join(moving)}), and the "
            "service already runs ROLLING, its tasks in the primary target group: removing them sends the traffic there"
        )
        return
    switch_back = switching or any(action == "Remove" for _, _, action in changed)
    remedy = (
        "Put DeploymentStrategy back in {params_file}, release once more with it (make deploy STACK=service ENV={env} "
        "TAG=<new tag>): ECS then moves traffic to the primary target group; then switch to ROLLING"
        if switch_back
        else "Release the service once more first (make deploy STACK=service ENV={env} TAG=<new tag>): ECS then moves traffic "
        "back to the primary target group, and this change is safe"
    ).format(env=deployer.env, params_file=deployer.params_file)
    if again:  # a reviewed change set (refuse_before_execute): its make execute, which the release ends for the service's
        rerun = f"{again} ALLOW_TRAFFIC_RESET=1"
        if layer.name == "service":
            remedy += f" (the release ends this change set: make changeset STACK=service ENV={deployer.env} makes it anew)"
    what = "switches the service to ROLLING" if switching else "rewrites or removes listener rules"
    raise Refused(
        f"error: refused: the change set {what} while production traffic is on the alternate target group, where ECS moved it "
        f"in a release: {'; '.join(moving)}; executing it would send production traffic to the primary target group, which may "
        f"run no task; {left}. {remedy}; or, if no task serves from the alternate one, {rerun}"
    )


def traffic_reset_ahead(deployer, layer, wanted: dict, say) -> str | None:
    """make diff's look at what refuse_moving_shifted_traffic refuses once the service's change set says it: a switch
    to ROLLING while a release left production traffic on the alternate target group (the production rule's weights:
    one DescribeRules). The refusal from its first words on, or None; say: a rule that cannot be read, as a note."""
    if layer.name != "service" or wanted.get("DeploymentStrategy") != "ROLLING" or deployer.allow_traffic_reset:
        return None
    switch = {"Parameters": [{"ParameterKey": "DeploymentStrategy", "ParameterValue": "ROLLING"}]}
    try:
        # make diff takes no ALLOW_TRAFFIC_RESET=1: the way past is the deploy's
        rerun = f"make deploy STACK={layer.name} ENV={deployer.env}{deployer.service_tag(layer.name)} ALLOW_TRAFFIC_RESET=1"
        refuse_moving_shifted_traffic(deployer, layer, switch, "the deploy stops there", rerun)
    except Failure as refused:
        return str(refused).removeprefix("error: refused: the change set ")
    except AWS_ERRORS as error:
        say(f"note: where production traffic goes could not be looked at ({error_code(error)}); make deploy looks again")
    return None


def refuse_removing_rules_in_use(deployer, layer, change_set, left, again=None):
    """Back to ROLLING, the alb change set removes the listener rules, which the deployed service
    names while it still shifts traffic (its load balancer's advancedConfiguration): the service
    layer goes to ROLLING first, then the alb layer, as the README's "Switching an environment" says.
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb-resources-for-blue-green.html"""
    removed = sorted(name for name, _, action in text.listener_rule_changes(change_set) if action == "Remove")
    in_use = rules_in_use(deployer, removed, again) if layer.name == "alb" else None
    if in_use:
        what, remedy = in_use
        raise Refused(f"error: refused: the change set {what}; {left}. {remedy}")


def rules_in_use(deployer, removed: list[str], again=None) -> tuple[str, str] | None:
    """(what, what to do) where listener rules an alb update removes are named by the deployed service, which still
    shifts traffic through them; None where they are not. again: the command that then runs the change set (a reviewed
    one's make execute), where the deploy of every layer would end it."""
    service = templates.stack_name(deployer.env, "service")
    if not removed or deployer.is_create(service):  # it runs no service
        return None
    strategy = parameter_values(deployer.describe(service)).get("DeploymentStrategy")
    if strategy not in TRAFFIC_SHIFTING:
        return None
    return (
        f"removes the listener rules {', '.join(removed)}, which {service} still uses (it is deployed with DeploymentStrategy {strategy})",
        f"Deploy the service layer first (make deploy STACK=service ENV={deployer.env}{deployer.service_tag('service')}), so that ECS "
        f"stops using them, then {again or f'make deploy ENV={deployer.env}' + deployer.service_tag('service')}",
    )


def runs_rolling(deployer) -> bool:
    """The environment's service stack has settled, ROLLING (not a create, nor one still changing)."""
    return deployer.settled_values(templates.stack_name(deployer.env, "service")).get("DeploymentStrategy") == "ROLLING"


def switches_to_rolling(deployer, layer, change_set) -> bool:
    running = parameter_values(deployer.describe(layer.stack) or {}).get("DeploymentStrategy")
    return running in TRAFFIC_SHIFTING and parameter_values(change_set).get("DeploymentStrategy") == "ROLLING"


def custom_names(deployer, layer, parameters=None) -> dict:
    """Logical id -> the name the layer's template gives it, for the resources of the types whose
    name a retained one can hold (purge.NAMED), with this environment's values (or the parameters
    given: a change set's); a name not known before deploy is left out."""
    template = json.loads(layer.template)
    resolver = Resolver(template, layer.parameters | (parameters or {}), {}, deployer.cf.meta.region_name)
    names = {}
    for logical_id, resource in template.get("Resources", {}).items():
        name_property = templates.CUSTOM_NAMES.get(resource["Type"])
        if resource["Type"] in purge.NAMED and name_property in resource.get("Properties", {}):
            name = resolver.value(resource["Properties"][name_property])
            if isinstance(name, str):
                names[logical_id] = name
    return names


def named_replacements_ahead(deployer, layer, deployed: dict, running: dict, wanted: dict) -> list[str]:
    """make diff's look at what refuse_before_execute refuses once a change set says it: the resources of a
    custom name (Layer.custom_named) that a deploy would replace under that name. A resource is replaced when
    a property its type's schema lists as create-only ("createOnlyProperties") takes another value: each is
    read with the template and values deployed and with the new ones; one not known before deploy (another
    resource's attribute) counts as unchanged, so this names only what is certain.
    https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html"""
    template, before, after = deployed_and_new(deployer, layer, deployed, running, wanted)
    found = []
    for logical_id in sorted(layer.custom_named):
        old, new = (deployed.get("Resources") or {}).get(logical_id), template["Resources"][logical_id]
        if not old or old.get("Type") != new["Type"]:
            continue
        name_property = templates.CUSTOM_NAMES[new["Type"]]
        names = known_pair(before.value(properties(old).get(name_property)), after.value(properties(new).get(name_property)))
        if names is None or names[0] != names[1]:
            continue  # renamed in the same change: CloudFormation replaces it under the new name
        changed = create_only_changes(old, new, before, after)
        if changed:
            found.append(f"{logical_id} ({new['Type']}, its {', '.join(changed)} changed, its {name_property} unchanged)")
    return found


# A change set's StatusReason where the new template gives a resource of the stack another Type: "Update of resource
# type is not permitted. The new template modifies resource type of the following resources: [...]" (AWS documents no
# wording; AWS's answer as reported in the field: https://github.com/aws/aws-sam-cli/issues/6786). The sandbox's emulator
# makes such a change set (and its execution then fails on a resource it does not find).
TYPE_CHANGE_REFUSED = "Update of resource type is not permitted"
TYPE_CHANGE_WAY = "CloudFormation gives no resource another type under its logical id"


def type_changes_ahead(deployer, layer, deployed: dict, running: dict, wanted: dict) -> list[str]:
    """make diff's look at what fails a deploy's change set (TYPE_CHANGE_REFUSED): a resource of the stack whose logical
    id the new template gives another Type, each as "<logical id> (<old type> to <new type>)"; only where it is in both.
    The deployed template is one layer.template_problem passed: every resource an object with a Type."""
    template, before, after = deployed_and_new(deployer, layer, deployed, running, wanted)
    return [
        f"{logical_id} ({old['Type']} to {new['Type']})"
        for logical_id, old in sorted(deployed["Resources"].items())
        if (new := template["Resources"].get(logical_id)) and new["Type"] != old["Type"] and exists(before, old) and exists(after, new)
    ]


def stateful_replacements_ahead(deployer, layer, deployed: dict, running: dict, wanted: dict) -> list[tuple[str, str, str]]:
    """make diff's look at what refuse_before_execute refuses without --allow-replace once a change set says it:
    the stateful resources (templates.STATEFUL_TYPES) a deploy would replace (a create-only property changed,
    a name too: create_only_changes) or remove (gone from the template, or its condition now false), each as
    (logical id, type, what happens to it). Only what is certain, as named_replacements_ahead."""
    template, before, after = deployed_and_new(deployer, layer, deployed, running, wanted)
    found = []
    for logical_id, old in sorted((deployed.get("Resources") or {}).items()):
        new = template["Resources"].get(logical_id)
        if old.get("Type") not in templates.STATEFUL_TYPES or not exists(before, old):
            continue
        if not exists(after, new):
            found.append((logical_id, old["Type"], "removed"))
        elif new["Type"] == old["Type"] and (changed := create_only_changes(old, new, before, after)):
            found.append((logical_id, new["Type"], f"replaced: its {', '.join(changed)} changed"))
    return found


def outputs_changed_ahead(deployer, layer, deployed: dict, running: dict, wanted: dict) -> tuple[frozenset, frozenset]:
    """make diff's look at the outputs the layer's update certainly changes, which the layers that read them then
    take at their own deploy: one whose resource it replaces (a create-only property takes another value, such as
    the service's name from a new NamePrefix) or removes, one whose value changes, one it adds or takes away (its
    condition: back to ROLLING, the listener rules' ARNs). What is not known before deploy counts as unchanged.
    A replaced resource gets a new physical ID, what Ref and Fn::GetAtt give:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-update-behaviors.html
    (changed, removed): removed, those of them the update takes away, whose readers then take their default."""
    template, before, after = deployed_and_new(deployer, layer, deployed, running, wanted)
    old_outputs, new_outputs = deployed.get("Outputs") or {}, template.get("Outputs") or {}
    old_resources, new_resources = deployed.get("Resources") or {}, template["Resources"]
    changed, removed = set(), set()

    def new_with_the_update(target: str) -> bool:  # a resource the update makes, replaces, or makes of another type
        was, will = old_resources.get(target), new_resources[target]
        return not (exists(before, was) and exists(after, will) and was["Type"] == will["Type"]) or bool(
            create_only_changes(was, will, before, after)
        )

    def value_changes(old, new) -> bool:
        # A resource's id or attribute (in an Fn::Join, an Fn::If's branch, ...) is new with the resource
        targets = after.resources_read(new)
        if targets != before.resources_read(old) or any(new_with_the_update(target) for target in targets):
            return True  # another resource's, or a parameter's value now; or a resource the update makes anew
        # the same resources, kept: what else it reads (a parameter's value) decides
        pair = known_pair(before.value(before.naming_resources(old)), after.value(after.naming_resources(new)))
        return pair is not None and pair[0] != pair[1]

    for name in old_outputs.keys() | new_outputs.keys():
        old, new = old_outputs.get(name), new_outputs.get(name)
        if exists(before, old) != exists(after, new):
            changed.add(name)
            removed |= {name} if exists(before, old) else set()
            continue
        if not exists(after, new):  # in neither stack (its condition false in both)
            continue
        if value_changes(old["Value"], new["Value"]):
            changed.add(name)
    return frozenset(changed), frozenset(removed)


def rules_in_use_removed_ahead(deployer, layer, deployed: dict, running: dict, wanted: dict) -> tuple[str, str] | None:
    """make diff's look at what refuse_removing_rules_in_use refuses once a change set says it: the alb layer's
    listener rules the update certainly removes (back to ROLLING), while the deployed service still uses them."""
    if layer.name != "alb":
        return None
    template, before, after = deployed_and_new(deployer, layer, deployed, running, wanted)
    removed = [
        logical_id
        for logical_id, old in sorted((deployed.get("Resources") or {}).items())
        if old.get("Type") == "AWS::ElasticLoadBalancingV2::ListenerRule"
        and exists(before, old)
        and not exists(after, template["Resources"].get(logical_id))
    ]
    return rules_in_use(deployer, removed)


def failing_rules(template: dict, values: dict, region: str) -> list[str]:
    """The AssertDescription of each assertion of the template's Rules that fails with these parameter values:
    CloudFormation validates them before it creates or updates anything, and refuses the change set. Only what is
    certain: a value not known before deploy (an upstream deployed first) counts as passing.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html"""
    return [
        described
        for applies, described, holds in assertions(template, Resolver(template, values, {}, region))
        if applies is True and holds is False
    ]


def refuse_failing_rules(deployer, layer, values: dict, left: str | None = None) -> None:
    """Before the layer's change set: the template's Rules with the values it gets (failing_rules), said as the refusal
    CloudFormation answers CreateChangeSet with, and what the refusal leaves (a deploy's: what it changed; make diff
    changes nothing)."""
    failing = failing_rules(json.loads(layer.template), values, deployer.cf.meta.region_name)
    if failing:
        raise Failure(f"error: CloudFormation would refuse {layer.stack}'s change set: {failing[0]}" + (f"; {left}" if left else ""))


def exists(resolver, resource) -> bool:
    """Whether a resource is in the stack the resolver reads: a condition decided at deploy time counts as true (not certain to go)."""
    return resource is not None and (resolver.condition(resource["Condition"]) is not False if "Condition" in resource else True)


def log_groups_taken_ahead(deployer, layer, found: dict, deployed: dict, wanted: dict, say=None) -> list[str]:
    """make diff's look at what refuse_taken_log_group_names refuses once a change set says it: a log group the
    update would make under a new name (a NamePrefix changed back, say), or new in the template, that another log
    group holds. Calls only for such a log group, and only where its name is known before deploy; say: where a
    name that could not be checked is said."""
    template, before, after = deployed_and_new(deployer, layer, deployed, parameter_values(found), wanted)
    taken = []
    for logical_id, new in sorted(template["Resources"].items()):
        old = (deployed.get("Resources") or {}).get(logical_id) or {}
        if new["Type"] != "AWS::Logs::LogGroup":
            continue
        # one without a LogGroupName (CloudFormation names it) has no name to check
        names = known_pair(before.value(properties(old).get("LogGroupName")), after.value(properties(new).get("LogGroupName")))
        if not (names and names[1] and names[0] != names[1]):
            continue
        if why := taken_log_group(deployer, layer.stack, found["StackId"], logical_id, names[1], say):
            taken.append(why)
    return taken


def deployed_and_new(deployer, layer, deployed: dict, running: dict, wanted: dict) -> tuple[dict, Resolver, Resolver]:
    """The layer's new template, and readers of the deployed template with the values it runs and of the new one
    with the values a deploy would give: what make diff's looks ahead compare."""
    template, region = json.loads(layer.template), deployer.cf.meta.region_name
    return template, Resolver(deployed, running, {}, region), Resolver(template, wanted, {}, region)


def properties(resource: dict | None) -> dict:
    """A resource's Properties: none at all is valid CloudFormation (a log group CloudFormation names); {} for a
    resource a template does not have (None)."""
    return (resource or {}).get("Properties") or {}


def create_only_changes(old: dict, new: dict, before: Resolver, after: Resolver) -> list[str]:
    """The properties its type's schema lists as create-only ("createOnlyProperties") that take another value
    from the resource deployed (old, read by before) to the new one (after): any replaces it. One not known
    before deploy (another resource's attribute) counts as unchanged.
    https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html"""
    from templates.validation import resource_schemas

    schema = resource_schemas().get_resource_schema("us-east-1", new["Type"]).schema
    return [
        name
        for name in (pointer.removeprefix("/properties/") for pointer in schema.get("createOnlyProperties", []))
        if (pair := known_pair(before.value(properties(old).get(name)), after.value(properties(new).get(name)))) and pair[0] != pair[1]
    ]


def known_pair(deployed, new) -> tuple | None:
    """(deployed, new), or None when either is not known before deploy."""
    return None if holds_unknown(deployed) or holds_unknown(new) else (deployed, new)


def log_group_names(deployer, layer) -> dict:
    """custom_names of the layer's log groups."""
    types = {lid: r["Type"] for lid, r in json.loads(layer.template).get("Resources", {}).items()}
    return {lid: name for lid, name in custom_names(deployer, layer).items() if types[lid] == "AWS::Logs::LogGroup"}


def log_group_exists(deployer, name, say=None) -> bool:
    """Whether a log group of that name is there; False, with a note (said by say, the deployer's by default), when
    that cannot be read (the CI deploy role reads no log group): the update then says it if the name is taken."""
    try:
        groups = deployer.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    except AWS_ERRORS as error:
        (say or deployer.say)(f"  note: could not check that log group {name} is free ({error_code(error)})")
        return False
    return any(group["logGroupName"] == name for group in groups)
