"""What a stack's status says, decided in one place for every command.
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html#cfn-console-view-stack-data-resources-status-codes"""

# A settled stack an update can change.
UPDATABLE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
SUCCEEDED = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE", "DELETE_COMPLETE"}
# A stack in these holds no resource, and a deploy creates it: an empty one under review, or a failed
# first create, whose rollback deleted what it made (Deployer.is_create).
EMPTY_STATUSES = ("REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE")
# A failed first create, rolled back or rolling back: what it made is deleted, or being deleted.
FIRST_CREATE_FAILED = ("ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED", "ROLLBACK_COMPLETE")
# An update's rollback under way: UPDATE_ROLLBACK_IN_PROGRESS, then its clean-up, while the resources the failed
# update created are deleted (the stack is back on its previous template by then), then UPDATE_ROLLBACK_COMPLETE.
UPDATE_ROLLING_BACK = ("UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
# The empty stack a CREATE change set makes: no operation runs on it, and it was never deployed.
UNDER_REVIEW = "REVIEW_IN_PROGRESS"


def is_deployed(found: dict | None) -> bool:
    """A DescribeStacks entry of a stack that was deployed: there is one, and not just the empty one under review."""
    return found is not None and found["StackStatus"] != UNDER_REVIEW


def runs_no_image(found: dict | None) -> bool:
    """A service stack whose ImageTag names nothing that runs: none, an empty one under review, or a failed first create."""
    return found is None or found["StackStatus"] in (UNDER_REVIEW, *FIRST_CREATE_FAILED)


def busy(status: str) -> bool:
    """A stack operation under way, which a deploy or destroy waits for."""
    return status.endswith("_IN_PROGRESS") and status != UNDER_REVIEW


def stuck(found: dict | None) -> bool:
    """A deployed stack settled where no change set starts (a failed first create, an update's rollback or a deletion
    that stopped half way): a deploy (Deployer.ready) refuses it with its way on (Deployer.way_out)."""
    return is_deployed(found) and found["StackStatus"] not in UPDATABLE and not busy(found["StackStatus"])


# A change set's ExecutionStatus once executed, and what it means.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ChangeSetSummary.html
ALREADY_EXECUTED = {
    "EXECUTE_IN_PROGRESS": "is being executed already (the stack is updating)",
    "EXECUTE_COMPLETE": "was executed already, and the stack has it",
    "EXECUTE_FAILED": "was executed already, and failed (the stack rolled back)",
}
