"""The service's release history, in SSM so that any machine can roll back (make rollback), and which
release a rollback goes back to (previous_release, why_nothing_earlier)."""

import json
import re

from botocore.exceptions import ClientError

import templates
from scripts.deploy.aws import AWS_ERRORS, PARAMETER_NOT_FOUND, error_code, may_have_landed, next_page_token
from scripts.deploy.layer import REVISION
from templates.errors import printable, untrusted_json
from templates.inputs import IMAGE_TAG

RELEASES_KEPT = 20  # entries of the release history, fewer when they pass MOST_STORED
MOST_STORED = 4000  # characters of the stored value: under the 4 KB of SSM's standard tier
RELEASE_WRITE_TRIES = 3


def stored(entries) -> str:
    """The history as the parameter holds it (ASCII: one character a byte)."""
    return json.dumps(entries, separators=(",", ":"))


class ReleaseHistory:
    """The environment's service releases, oldest first: each {time, image_tag, revision, by}, and
    stack_created (which service stack), replaced (the image it replaced; None for the stack's first)
    and rolled_back_from (the image a rollback left) when known."""

    def __init__(self, ssm, env, say, sleep):
        self.ssm, self.say, self.sleep = ssm, say, sleep
        self.name = templates.deploy_parameter(env, templates.RELEASE_HISTORY)
        self.version = 0  # the parameter's version as last read
        self.warned = set()  # what the history's reads said of it: a run that reads it twice (a rollback, then its record) says each once

    def releases(self) -> list[dict]:
        """The release history; a parameter that is not a list is reported and read as empty (the next
        release starts it again), an entry that is not a release is reported and dropped: never a
        traceback after a deploy that worked."""
        try:
            parameter = self.ssm.get_parameter(Name=self.name)["Parameter"]
        except ClientError as error:
            if error_code(error) != PARAMETER_NOT_FOUND:
                raise
            self.version = 0
            return []
        value, self.version = parameter["Value"], parameter.get("Version", 0)
        entries = untrusted_json(value)
        if not isinstance(entries, list):
            # A hand edit (a comma too many): the versions before it still hold the releases, which the
            # next write would otherwise replace with its own alone.
            earlier, entries = self.last_list_before(self.version)
            then = f"reading version {earlier}, the last that is one" if earlier else "starting it again"
            self.warn(
                f"warning: the release history (SSM parameter {self.name}) is not a list of releases in its version {self.version} "
                f"({printable(repr(value[:60]), one_line=True)}); {then}"
            )
            if not earlier:
                return []
        releases = [entry for entry in entries if is_release(entry)]
        if len(releases) < len(entries):
            dropped = next(entry for entry in entries if not is_release(entry))
            count = len(entries) - len(releases)
            some = "1 entry that is" if count == 1 else f"{count} entries that are"
            self.warn(
                f"warning: the release history (SSM parameter {self.name}) holds {some} no release, such as {printable(repr(str(dropped)[:60]), one_line=True)}: left out"
            )
        return releases

    def warn(self, text):
        if text not in self.warned:
            self.warned.add(text)
            self.say(text)

    def record(self, entry) -> None:
        """Add entry to the history."""
        self.write(entry, self.releases())

    def write(self, entry, entries):
        theirs = []  # other runs' releases this write merged in: a write that may have landed must hold them too
        # SSM has no conditional write: each write makes the next version ("automatically increments the version
        # number by one": https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-versions.html),
        # so a version other than the one read + 1 means another run wrote in between. Then its entries are read back
        # from the parameter's history and written again with ours, so that no release is lost.
        busy = None  # the last try's TooManyUpdates: nothing of this run's written
        for _ in range(RELEASE_WRITE_TRIES):
            kept, busy = trimmed([*entries, entry]), None
            try:
                answer = self.ssm.put_parameter(
                    Name=self.name,
                    Value=stored(kept),
                    Type="String",
                    Overwrite=True,
                    Description="StartupWebApp service releases (scripts/deploy): time, image tag, git revision, who",
                )
            except ClientError as error:
                # Another run's write of the history is under way (PutParameter's TooManyUpdates): read
                # what it wrote, then write again with it.
                # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html
                if error_code(error) != "TooManyUpdates":
                    # an earlier attempt wrote it, its answer lost: the history holds this run's release, and what it
                    # merged from other runs and kept (its own trim may have dropped the oldest)
                    if may_have_landed(error) and self.holds([entry, *(e for e in theirs if e in kept)]):
                        return
                    raise
                busy = error
                self.say("the release history is being written by another run: reading it again in 1 s")
                self.sleep(1)
                found = [e for e in self.releases() if e != entry]
                entries, theirs = merged(entries, found), theirs + [e for e in found if e not in entries]
                continue
            written = answer.get("Version")
            if written is None:  # answered without its version: written all the same where the history holds it now
                if self.holds([entry, *(e for e in theirs if e in kept)]):
                    return
                raise KeyError("Version")  # record_release's warning: an answer it could not read
            if written == self.version + 1:
                return
            # The versions between: another run's writes, or this write's own (botocore retried it, an answer lost).
            others = [found for found in self.between(self.version, written) if found != kept]
            if not others:
                return
            self.say(f"the release history changed while this run wrote it (version {self.version} to {written}): merging")
            for found in others:  # oldest first: each run's write holds what it read before it
                found = [e for e in found if e != entry]
                entries, theirs = merged(entries, found), theirs + [e for e in found if e not in entries]
            self.version = written
        if busy is not None:  # not written: the release is not in the history (record_release's warning says so)
            raise busy
        self.say(f"warning: the release history (SSM parameter {self.name}) kept changing; another run's release may be missing from it")

    def holds(self, entries) -> bool:
        """Whether the history as it reads now holds every one of entries (what a write of them merged from
        other runs' too); False when it cannot be read."""
        try:
            now = self.releases()
        except AWS_ERRORS:
            return False
        return all(entry in now for entry in entries)

    def versions(self):
        """(version, its value read as JSON) of each version of the parameter, page after page, as they
        are read."""
        kwargs, seen = {"Name": self.name}, set()
        while True:
            page = self.ssm.get_parameter_history(**kwargs)
            for parameter in page.get("Parameters", []):
                yield parameter.get("Version", 0), untrusted_json(parameter["Value"])
            token = next_page_token(page, seen, "GetParameterHistory")
            if not token:
                return
            kwargs["NextToken"] = token

    def last_list_before(self, version) -> tuple[int, list | None]:
        """(version, its entries) of the newest version before `version` that holds a list; (0, None) if none."""
        if version <= 1:  # version 1 has none before it
            return 0, None
        lists = [(n, entries) for n, entries in self.versions() if n < version and isinstance(entries, list)]
        return max(lists, key=lambda found: found[0], default=(0, None))

    def between(self, low, high) -> list[list[dict]]:
        """The release history as each version after low and before high holds it, oldest first (one that is not a
        list holds none)."""
        found = sorted(((n, entries) for n, entries in self.versions() if low < n < high), key=lambda version: version[0])
        return [[entry for entry in entries if is_release(entry)] if isinstance(entries, list) else [] for _, entries in found]


def redeploy(entry) -> bool:
    """A service update that kept the image that ran (another setting changed): no rollback goes back to it."""
    return entry.get("replaced") == entry["image_tag"] and not entry.get("rolled_back_from")


def trimmed(entries) -> list[dict]:
    """The history as written: at most RELEASES_KEPT entries, within MOST_STORED characters. The oldest
    entry of an earlier service stack goes first (no rollback reads them: of_the_stack), then the oldest
    redeploy, then the oldest entry: routine setting changes, each recorded, pushed out the release a
    rollback goes back to (21 of them, and make rollback found nothing earlier). The newest entry, the one
    being written, names the stack that runs."""
    kept = list(entries)
    current = kept[-1].get("stack_created") if kept else None

    def of_an_earlier_stack(i):
        return current is not None and kept[i].get("stack_created", current) != current

    def droppable(i):
        # A redeploy between two entries that agree with each other and not with it is the only trace of a release
        # or rollback not recorded between them (chain_broken): it stays, and the oldest entry goes instead.
        entry = kept[i]
        return redeploy(entry) and (
            i == 0 or kept[i - 1]["image_tag"] == entry["image_tag"] or kept[i + 1].get("replaced") == entry["image_tag"]
        )

    while len(kept) > RELEASES_KEPT or len(stored(kept)) > MOST_STORED:
        earlier = next((i for i in range(len(kept)) if of_an_earlier_stack(i)), None)
        del kept[earlier if earlier is not None else next((i for i in range(len(kept) - 1) if droppable(i)), 0)]
    return kept


def merged(read, theirs) -> list[dict]:
    """Another run's history with what this run read and theirs lacks, each list's order kept: an entry of both
    places theirs up to it, and what read has alone goes where read has it (before theirs, where theirs trimmed it).
    Putting all of read's own first placed a release another run wrote after this run's read before the one it
    replaced, where theirs was an older version (a retry's read-back, two runs' writes neither holding the other's).
    A version that is not a list (a hand edit, say) reads as none, which would otherwise cost the whole history."""
    result, rest = [], list(theirs)
    for entry in read:
        if entry in rest:
            at = rest.index(entry)
            result, rest = result + rest[: at + 1], rest[at + 1 :]
        elif entry not in theirs:
            result.append(entry)
    return result + rest


def stack_mark(creation_time) -> str:
    """How a release names its service stack (stack_created): the stack's CreationTime, so that one
    destroyed and created again starts a history of its own."""
    return f"{creation_time:%Y-%m-%dT%H:%M:%SZ}"


def of_the_stack(releases, creation_time) -> list[dict]:
    """The releases of the service stack created at creation_time (one without stack_created predates
    the field: taken as its)."""
    mark = stack_mark(creation_time)
    return [entry for entry in releases if entry.get("stack_created", mark) == mark]


def revision_running(releases, running) -> str:
    """The git revision of the template the service stack runs, which a rollback keeps with another image: the
    revision of the stack's last release when that names the running image (every service deploy that executes records
    one, a settings change too), else "unknown" (released outside this tool, a release not recorded, a hand edit). A
    rollback's is that of the release it rolled back from, whose template it kept, where the entry before is that
    release: a rollback recorded before rollbacks said so holds the revision of the checkout it ran from."""
    for i in range(len(releases) - 1, -1, -1):
        entry = releases[i]
        if entry["image_tag"] != running:
            return "unknown"
        left = entry.get("rolled_back_from")
        if not (left and i and releases[i - 1]["image_tag"] == left):
            revision = entry.get("revision", "")
            return revision if re.fullmatch(REVISION, revision) else "unknown"
        running = left
    return "unknown"


def is_release(entry) -> bool:
    """An entry as a release records it: its image_tag, and the replaced and rolled_back_from it may
    name, image tags (a rollback deploys them as the ImageTag parameter; replaced may be None, the
    stack's first release), and its other fields text. A hand-edited entry is left out, not deployed."""

    def image_tag(value):
        return isinstance(value, str) and bool(re.fullmatch(IMAGE_TAG, value))

    return (
        isinstance(entry, dict)
        and image_tag(entry.get("image_tag"))
        and ("replaced" not in entry or entry["replaced"] is None or image_tag(entry["replaced"]))
        and ("rolled_back_from" not in entry or image_tag(entry["rolled_back_from"]))
        and all(isinstance(entry.get(field, ""), str) for field in ("time", "by", "revision", "stack_created"))
    )


def own_releases(releases, image) -> list[int]:
    """The indexes of the image's own releases: neither rollbacks nor releases of the same image again."""
    return [i for i, e in enumerate(releases) if e["image_tag"] == image and not e.get("rolled_back_from") and not redeploy(e)]


def unrecorded_release_of(releases, image) -> str | None:
    """What says the image ran before any entry of it the history holds, if anything does: its first entry is a
    redeploy of it (an update that kept it), or an entry before that names it as the image it replaced or left. Its
    own release then went unrecorded (a run stopped in its wait) or was trimmed. A rollback to it by TAG= is no
    release of it, and says nothing of one."""
    first = next((i for i, entry in enumerate(releases) if entry["image_tag"] == image), len(releases))
    if any(image in (entry.get("replaced"), entry.get("rolled_back_from")) for entry in releases[:first]):
        return "an entry before its first names it as the image it replaced or left"
    if first < len(releases) and redeploy(releases[first]):
        return "its first entry there is a redeploy of it"
    return None


def chain_broken(releases, start) -> bool:
    """Whether an entry from start on names another image as the one it replaced than the entry before it: a
    release or rollback between the two was not recorded (a run stopped in its wait), and what ran since is not
    known from the history."""
    return any(releases[i].get("replaced") != releases[i - 1]["image_tag"] for i in range(max(start, 1), len(releases)))


def abandoned(releases, image) -> bool:
    """A rollback left the image after it last began to run (its latest entry: a release of it, or a rollback to
    it): never gone back to (no swinging between two). Counted from its own release alone, an image rolled
    back from, then gone back to by name (TAG=) and replaced by a new release, was refused as the way back."""
    last = max((i for i, e in enumerate(releases) if e["image_tag"] == image), default=-1)
    return any(e.get("rolled_back_from") == image for e in releases[last + 1 :])


def why_nothing_earlier(releases, running, said) -> str | None:
    """Why previous_release found nothing, where the history says it plainly: the stack has run only its first
    release's image (said: the running image as printed), the running image's own release was the stack's first
    (reached again by rollbacks since), or what ran before its own release was rolled back from since. None otherwise
    (the history misses or cut entries)."""
    named = {image for entry in releases for image in (entry["image_tag"], entry.get("replaced"), entry.get("rolled_back_from"))}
    if releases and releases[0].get("replaced", "") is None and named <= {running, None}:
        return f"{said} is the only image this service stack has run (its first release)"
    own = own_releases(releases, running)
    if own and releases[own[-1]].get("replaced", "") is None:  # None: the stack's first release (Deployer records it so)
        return f"{said}'s own release was this service stack's first: nothing ran before it"
    before = releases[own[-1]].get("replaced") if own else None
    if before and before != running and abandoned(releases, before):
        return f"what ran before {said}'s release, {before}, was rolled back from since, and a rollback never goes back to it"
    return None


def previous_release(releases, running, whole=None) -> dict | None:
    """The release to roll back to: what ran before the running image was released, as that release recorded it
    (`replaced`), not counting releases that were rollbacks or redeployed the same image (a rollback from J, reached
    by rolling back from K, goes to what ran before J's own release); for an image reached only by a rollback to it
    (TAG=), what ran before the image that rollback left. None when nothing did, when a rollback left it since, or
    when the history misses a release or rollback after it (chain_broken: it may not be the way back). A history
    written before releases recorded `replaced`: the latest release before the running image's first one that was
    never rolled back from. whole: the history the releases are the start of (a rollback's recursion)."""
    whole = releases if whole is None else whole
    own = own_releases(releases, running)
    if own and "replaced" not in releases[own[-1]] and any("replaced" in entry for entry in releases):
        # its latest release written before releases recorded `replaced` (a history of both kinds): what ran before
        # it by the older rule, then the checks of one that names it
        found = previous_release(releases[: own[-1]], running)
        if found is None or abandoned(whole, found["image_tag"]) or chain_broken(whole, own[-1] + 1):
            return None
        return release_entry(whole, found["image_tag"]) or found
    if not any("replaced" in entry for entry in releases):
        left = {entry["rolled_back_from"] for entry in whole if entry.get("rolled_back_from")} | {running}
        first = next((i for i, entry in enumerate(releases) if entry["image_tag"] == running), len(releases))
        return next((entry for entry in reversed(releases[:first]) if entry["image_tag"] not in left), None)
    if own:
        target = releases[own[-1]]["replaced"]
    else:
        back = [i for i, entry in enumerate(releases) if entry["image_tag"] == running and entry.get("rolled_back_from")]
        # the history's start cut (trimmed, or its first release unrecorded): the image's own release may have been there
        if not back or releases[0].get("replaced") is not None or chain_broken(releases, back[-1]):
            return None
        found = previous_release(releases[: back[-1]], releases[back[-1]]["rolled_back_from"], whole)
        target = found and found["image_tag"]
    if target is None or target == running or abandoned(whole, target):
        return None  # the stack's first release; or what ran before was rolled back from since: not gone back to
    # What ran since the evidence: since the running image's own release, which names the image before it; for an
    # image reached by a rollback, since the image to go back to last ran (from the start when it has no entry).
    since = own[-1] + 1 if own else max((i for i, entry in enumerate(whole) if entry["image_tag"] == target), default=-1) + 1
    if chain_broken(whole, since):
        return None
    # {"image_tag"} alone: its own release is not in the history (cut short, or an earlier stack's)
    return release_entry(whole, target) or {"image_tag": target}


def unknown_before(releases, running, said, history) -> str | None:
    """Why what ran before the running image (said: as printed) is not known from the stack's releases, as make rollback
    without TAG= refuses for, and make releases notes; None when it is. Not known when it is not the history's last
    release, yet an earlier one (a rollback or release whose wait stopped before it was recorded: going by its old
    release would roll back a second time), or when no release names it (released outside this tool, or not recorded:
    going by the last one would skip what ran in between)."""
    last, named = (releases[-1] if releases else None), any(entry["image_tag"] == running for entry in releases)
    if last and last["image_tag"] != running and named:
        return (
            f"but the last release in the history ({history}) is {last['image_tag']} "
            f"({printable(str(last.get('time', '?')), one_line=True)}): a release or rollback since was not recorded (its write "
            f"refused or unanswered, or its wait stopped before it), and {said} runs"
        )
    if last and not named:
        return f"which no release in the history ({history}) names: it was released outside make deploy, or its release was not recorded"
    if evidence := unrecorded_release_of(releases, running):
        # It ran before any release of it the history holds: what ran before that release is not recorded, and
        # going by the history's order would skip what ran in between.
        return f"whose own release the history ({history}) does not hold (not recorded, or trimmed from it), though it ran: {evidence}"
    return None


def nothing_earlier(releases, running, said, history) -> str:
    """Why make rollback without TAG= finds no release to go back to (previous_release gave none)."""
    return why_nothing_earlier(releases, running, said) or (
        f"the release history (SSM parameter {history}) names no image that ran before the running one (image "
        f"tag {said}) and was not rolled back from since, or cannot tell which: it misses a release or rollback (a run stopped "
        "in its wait), its oldest entries were trimmed, or the image was reached by rollbacks alone"
    )


def release_entry(releases, image) -> dict | None:
    """The entry that says when the image began to run: its latest own release, not a redeploy of it (a settings
    change, whose time the rollback gave as the release's); failing that, its latest rollback to it; its latest entry."""
    own = own_releases(releases, image)
    if own:
        return releases[own[-1]]
    entries = [entry for entry in releases if entry["image_tag"] == image]
    return next((entry for entry in reversed(entries) if entry.get("rolled_back_from")), entries[-1] if entries else None)
