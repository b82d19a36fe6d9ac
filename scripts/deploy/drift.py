"""`make drift`: CloudFormation's drift detection on one stack, waited for within a bound, and the
resources it found changed outside CloudFormation.

DetectStackDrift starts a detection; DescribeStackDriftDetectionStatus says when it ends
(DETECTION_COMPLETE, or DETECTION_FAILED when some resource could not be read: the others still
have results); DescribeStackResourceDrifts lists the MODIFIED and DELETED resources with their
PropertyDifferences. Only properties the template sets are compared, and types without drift
support are NOT_CHECKED and left out.
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-drift.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/detect-drift-stack.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DetectStackDrift.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackDriftDetectionStatus.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackResourceDrifts.html"""

from dataclasses import dataclass

from botocore.exceptions import ClientError

from scripts.deploy import text
from scripts.deploy.aws import error_code, error_message, next_page_token
from scripts.deploy.status import is_deployed
from templates.errors import printable

# Detection "can take up to several minutes, depending on the number of resources" (DetectStackDrift);
# past this the run stops waiting, exit 2, and CloudFormation carries on.
MAX_WAIT_SECONDS = 600


@dataclass(frozen=True)
class Checked:
    complete: bool  # every resource that supports drift detection was checked
    moved: bool = False  # a listener rule's weights moved by a release, which need no undoing
    deployed: bool = True  # False: no stack of ours, nothing was checked
    ours: bool = True  # False: a stack of the layer's name this tool did not make, not checked
    deleted: tuple = ()  # the logical ids of the resources found DELETED
    modified: bool = False  # some resource was found MODIFIED (other than moved_by_release), or the stack DRIFTED without a list


def check(deployer, stack, layer_name) -> Checked:
    """Detect drift on the stack, wait for it and print what drifted."""
    found = deployer.describe(stack)
    if not is_deployed(found):
        deployer.say(f"{stack}: not deployed, nothing to check")
        return Checked(complete=True, deployed=False)
    if deployer.foreign(found):  # someone else's: "in sync" would speak for it
        deployer.say(text.not_ours(stack, deployer.own_tags(found)) + "; not checked")
        return Checked(complete=True, deployed=False, ours=False)
    if found["StackStatus"] == "ROLLBACK_COMPLETE":
        # a failed first create: its rollback deleted what it made, so "in sync" would say nothing (make diff does not
        # compare it either)
        deployer.say(f"{stack}: ROLLBACK_COMPLETE: holds nothing to check; {deployer.way_out(layer_name, 'ROLLBACK_COMPLETE')}")
        return Checked(complete=False)
    if found["StackStatus"] == "ROLLBACK_FAILED":  # what a failed create's rollback left: part of the layer, "in sync" would hide it
        deployer.say(f"{stack}: ROLLBACK_FAILED: not checked; {deployer.way_out(layer_name, 'ROLLBACK_FAILED')}")
        return Checked(complete=False)
    if found["StackStatus"] == "DELETE_FAILED":  # half deleted: what is gone went on purpose, "in sync" would hide it
        deployer.say(f"{stack}: DELETE_FAILED: not checked; {deployer.way_out(layer_name, 'DELETE_FAILED')}")
        return Checked(complete=False)
    if found["StackStatus"].endswith("_IN_PROGRESS"):
        # Not sent into a running operation: the stack's resources are changing, so what a detection
        # found would say nothing. (The user guide's "Considerations when detecting drift",
        # using-cfn-stack-drift.html above, lists the stack statuses detection runs on; a refusal
        # CloudFormation answers anyway is a ValidationError, handled below.)
        deployer.say(*text.drift_busy(stack, found["StackStatus"], deployer.env, layer_name))
        return Checked(complete=False)
    try:
        detection = deployer.cf.detect_stack_drift(StackName=found["StackId"])["StackDriftDetectionId"]
    except ClientError as error:
        if error_code(error) != "ValidationError":
            raise
        # e.g. a detection already running on it ("You can only run a single drift detection
        # operation on a given stack at the same time", detect-drift-stack.html)
        deployer.say(f"error: {stack}: drift detection refused: {printable(error_message(error), one_line=True)}")
        return Checked(complete=False)
    status = wait(deployer, detection)
    if status is None:
        deployer.say(*text.drift_timeout(stack, detection, MAX_WAIT_SECONDS // 60, deployer.env, layer_name, deployer.cli))
        return Checked(complete=False)
    complete = status["DetectionStatus"] == "DETECTION_COMPLETE" and status.get("StackDriftStatus") in ("IN_SYNC", "DRIFTED")
    in_sync = complete and status.get("StackDriftStatus") == "IN_SYNC"
    drifts = [] if in_sync else resource_drifts(deployer, found["StackId"])  # DETECTION_FAILED: partial results
    deployer.say(*text.drift_report(stack, status, drifts))
    # The weights a release moved are CloudFormation's drift but not a change to undo: such a rule
    # alone leaves the layer in sync for `make drift`'s exit status.
    unexpected = [d for d in drifts if not text.moved_by_release(d)]
    deleted = tuple(d["LogicalResourceId"] for d in unexpected if d.get("StackResourceDriftStatus") == "DELETED")
    modified = len(deleted) < len(unexpected) or (status.get("StackDriftStatus") == "DRIFTED" and not drifts)
    return Checked(complete=complete, moved=len(unexpected) < len(drifts), deleted=deleted, modified=modified)


def wait(deployer, detection) -> dict | None:
    """The detection's final DescribeStackDriftDetectionStatus answer, or None after MAX_WAIT_SECONDS."""
    for _ in deployer.polls(MAX_WAIT_SECONDS):
        status = deployer.cf.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
        if status["DetectionStatus"] != "DETECTION_IN_PROGRESS":
            return status
    return None


def resource_drifts(deployer, stack_id) -> list[dict]:
    """The stack's MODIFIED and DELETED resources from its last detection, every page."""
    kwargs = {"StackName": stack_id, "StackResourceDriftStatusFilters": ["MODIFIED", "DELETED"]}
    drifts, seen = [], set()
    while True:
        page = deployer.cf.describe_stack_resource_drifts(**kwargs)
        drifts += page.get("StackResourceDrifts", [])
        token = next_page_token(page, seen, "DescribeStackResourceDrifts")
        if not token:
            return drifts
        kwargs["NextToken"] = token
