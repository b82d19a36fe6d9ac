"""The cost model: the price table (scripts/prices.yaml), one formula per kind of charge, and the
estimate of every deployed layer's resources in one environment."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from scripts.review.resolver import DEPLOY_TIME_TEXT
from templates import LAYERS, ROOT, inputs, params, relative
from templates.errors import ANY_CONTROL_CHARACTER, ToolError
from templates.generation import PARAMS_DIR
from templates.resolver import UNKNOWN, as_number

PRICES = ROOT / "scripts" / "prices.yaml"
CENT = Decimal("0.01")
ZERO = Decimal("0.00")


class PriceTableError(ToolError):
    """scripts/prices.yaml cannot price: one line per problem, each naming the key."""

    code = 2


def load_prices(path: Path = PRICES, params_dir: Path = PARAMS_DIR) -> dict:
    """The table as the params files are read (templates/params.py read_yaml: a regular file, YAML 1.2's
    core schema, no anchors and aliases, which expand without bound, nor a key given twice), once it is
    one the estimate can use (table_problems) with the environments of params_dir: the file invites
    edits ("Change a price here"). The plan's environment is checked against the project's params/ only: a review of
    another params directory (a copy holding staging alone) says the plan's figures are another environment's."""
    where = relative(path)
    try:
        table = params.read_yaml(path, where, "the price table")
    except params.ParamsError as error:
        raise PriceTableError(str(error)) from None
    environments = [each.stem for each in params.params_files(params_dir)] if params_dir.resolve() == PARAMS_DIR.resolve() else None
    problems = text_problems(table) or table_problems(table, environments)
    if problems:
        raise PriceTableError("\n".join(f"{where}: {problem}" for problem in problems))
    return table


def text_problems(value, path: str = "") -> list[str]:
    """Keys that are not text, and text that is not one printable line: the document quotes the
    table's text as it is, and a line break or an escape sequence there would forge a line of it."""
    where = path or "the table"
    if isinstance(value, dict):
        problems = []
        for key, each in value.items():
            if not isinstance(key, str) or ANY_CONTROL_CHARACTER.search(key):
                what = "holds a line break or control character" if isinstance(key, str) else "is no name"
                problems.append(f"{where}: the key {params.shown(key)} {what}; allowed: names such as alb_hours")
            else:
                problems += text_problems(each, f"{path}.{key}" if path else key)
        return problems
    if isinstance(value, list):
        return [problem for index, each in enumerate(value) for problem in text_problems(each, f"{where}[{index}]")]
    if isinstance(value, str) and ANY_CONTROL_CHARACTER.search(value):
        return [f"{where}: {params.shown(value)} holds a line break or control character; allowed: one line of printable text"]
    return []


def table_problems(table, environments: list[str] | None) -> list[str]:
    """What keeps the estimate from reading the price table, one line each (key, value, what is allowed);
    environments: those the plan's may name (None: any)."""
    if not isinstance(table, dict):
        return ["not a mapping of region, hours_per_month, prices, assumptions, items, resource_types, free, not_included and plan"]
    sections = {
        "prices": dict,
        "assumptions": dict,
        "items": dict,
        "resource_types": dict,
        "free": dict,
        "not_included": list,
        "plan": dict,
    }
    problems = [f"{key}: missing or not a {kind.__name__}" for key, kind in sections.items() if not isinstance(table.get(key), kind)]
    problems += [] if decimal_of(table.get("hours_per_month")) else ["hours_per_month: allowed: a number above 0, below 10^12, such as 730"]
    problems += [] if isinstance(table.get("region"), str) else ["region: allowed: the text the estimate names, such as us-east-1"]
    if problems:
        return problems
    plan = table["plan"]
    problems += [f"plan.{key}: missing or not text" for key in ("source", "environment", "total") if not isinstance(plan.get(key), str)]
    if environments is not None and isinstance(plan.get("environment"), str) and plan["environment"] not in environments:
        # another name is never the review's: the plan's range was never compared, each document said its figures were for that one
        problems.append(
            f"plan.environment: {plan['environment']!r} is no environment; allowed: one of {', '.join(environments) or 'none'} "
            "(an <env>.yaml of the params directory)"
        )
    bounds = plan.get("range")
    if not (
        isinstance(bounds, list)
        and len(bounds) == 2
        and all(decimal_of(b) is not None for b in bounds)
        and decimal_of(bounds[0]) <= decimal_of(bounds[1])
    ):
        problems.append("plan.range: allowed: the plan total's lowest and highest dollars, such as [60, 80]")
    rows = plan.get("rows")
    if not isinstance(rows, list):
        problems.append("plan.rows: allowed: a list of {what: <text>, plan: <text>, and items, types, outside or scaling_peak_share}")
    for index, row in enumerate(rows if isinstance(rows, list) else []):
        if not isinstance(row, dict) or not isinstance(row.get("what"), str) or not isinstance(row.get("plan"), str):
            problems.append(f"plan.rows[{index}]: allowed: {{what: <text>, plan: <text>, ...}}")
            continue
        share = decimal_of(row["scaling_peak_share"]) if "scaling_peak_share" in row else ZERO
        if share is None or share > 1:
            problems.append(f"plan.rows[{index}].scaling_peak_share: allowed: a share of the month from 0 to 1, such as 0.5")
        for key, section in (("items", "items"), ("types", "free")):  # a type of resource_types is priced by its items, never by type
            names = row.get(key, [])
            where = f"plan.rows[{index}].{key}"
            problems += listed_problems(where, names, section, table) if text_list(names) else [f"{where}: allowed: a list of text"]
        if not isinstance(row.get("outside", ""), str):
            problems.append(f"plan.rows[{index}].outside: allowed: text")
    problems += [f"free.{kind}: allowed: text, why it costs nothing" for kind, why in table["free"].items() if not isinstance(why, str)]
    problems += [  # the estimate prices it by its items and never says the reason
        f"free.{kind}: also in resource_types; allowed: each type in free or in resource_types, not both"
        for kind in table["free"]
        if kind in table["resource_types"]
    ]
    problems += [
        f"not_included[{index}]: allowed: text, what the estimate leaves out, or {{layer: <one of {', '.join(LAYERS)}>, "
        "text: <text>}, said only where that layer is deployed"
        for index, entry in enumerate(table["not_included"])
        if not (
            isinstance(entry, str)
            or (
                isinstance(entry, dict)
                and set(entry) == {"layer", "text"}
                and isinstance(entry["text"], str)
                and isinstance(entry["layer"], str)
                and entry["layer"] in LAYERS
            )
        )
    ]
    for name, entry in table["prices"].items():
        if not isinstance(entry, dict) or decimal_of(entry.get("usd")) is None or not isinstance(entry.get("per"), str):
            problems.append(
                f"prices.{name}: allowed: {{usd: <a number from 0, below 10^12, such as 0.0225>, per: <what it is charged for>}}"
            )
    for name, entry in table["assumptions"].items():
        if not isinstance(entry, dict) or decimal_of(entry.get("value")) is None or not isinstance(entry.get("text"), str):
            problems.append(
                f"assumptions.{name}: allowed: {{value: <a number from 0, below 10^12>, text: <what it counts>, why: <optional>}}"
            )

    def references(path, entry):
        for key, value in entry.items():
            if isinstance(value, dict):
                references(f"{path}.{key}", value)
            elif key.endswith(("price", "units")) and not isinstance(value, str):
                problems.append(
                    f"{path}.{key}: {value!r}; allowed: the name of an entry of {'prices' if key.endswith('price') else 'assumptions'}"
                )
            elif key.endswith("price") and value not in table["prices"]:
                problems.append(f"{path}.{key}: {value!r} is no entry of prices; allowed: {', '.join(table['prices'])}")
            elif key.endswith("units") and value not in table["assumptions"]:
                problems.append(f"{path}.{key}: {value!r} is no entry of assumptions; allowed: {', '.join(table['assumptions'])}")

    for name, entry in table["items"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("formula"), str) or entry["formula"] not in FORMULAS:
            problems.append(f"items.{name}.formula: allowed: one of {', '.join(FORMULAS)} (scripts/review/cost.py)")
            continue
        missing = [key for key in ("label", *FORMULAS[entry["formula"]][1]) if not isinstance(entry.get(key), str)]
        off = entry.get("zero_when")
        if off is not None and not (
            isinstance(off, dict)
            and all(isinstance(off.get(key), str) for key in ("parameter", "value", "reason"))
            and off["parameter"] in inputs.INPUTS  # another name never matches, and the cost is never zeroed
        ):
            problems.append(
                f"items.{name}.zero_when: allowed: {{parameter: <an input of templates/inputs.py>, value: <text>, reason: <text>}}"
            )
        vended = entry.get("vended")  # log_group reads each of its keys
        if vended is not None and not (
            isinstance(vended, dict) and all(isinstance(vended.get(key), str) for key in ("name_prefix", "what", "price", "units"))
        ):
            problems.append(
                f"items.{name}.vended: allowed: {{name_prefix: <text>, what: <text>, price: <an entry of prices>, "
                "units: <an entry of assumptions>}"
            )
        if missing:
            problems.append(f"items.{name}: {', '.join(missing)} missing or not text; formula {entry['formula']} reads them")
        else:
            references(f"items.{name}", entry)
    for kind, items in table["resource_types"].items():
        problems += listed_problems(f"resource_types.{kind}", items, "items", table)
    return problems


def listed_problems(where: str, names, section: str, table: dict) -> list[str]:
    """names: a list of entries of the table's section, each once (one given twice is counted twice)."""
    if not isinstance(names, list):
        return [f"{where}: {[names]} no entry of {section}; allowed: a list of {', '.join(table[section])}"]
    unknown = [name for name in names if not isinstance(name, str) or name not in table[section]]
    problems = [f"{where}: {unknown} no entry of {section}; allowed: a list of {', '.join(table[section])}"] if unknown else []
    twice = [name for index, name in enumerate(names) if isinstance(name, str) and name in names[:index]]
    return problems + [f"{where}: {name!r} is given twice; allowed: each entry of {section} once" for name in dict.fromkeys(twice)]


def text_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(each, str) for each in value)


MOST_NUMBER = Decimal(10) ** 12  # no price, count or hour of the table comes near; 1e24 overflowed the cents' rounding


def decimal_of(value) -> Decimal | None:
    """A price, count or share as the table writes it (a YAML number), or None: text such as 0.0225x, a
    negative, NaN, infinity or a number past MOST_NUMBER cannot be priced."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = Decimal(str(value))
    return number if number.is_finite() and 0 <= number < MOST_NUMBER else None


@dataclass(frozen=True)
class Cost:
    resource: str
    type: str
    item: str  # item id of the price table, "" for a type it does not price
    label: str  # what is charged
    basis: str  # how: prices and assumptions
    amount: Decimal | None  # a month, rounded to the cent; None: not priced
    absent: bool = False  # not there in this environment: not created, or left empty (zero_when)


def money(amount: Decimal | None) -> str:
    return "not priced" if amount is None else f"${amount:,.2f}"


def number(value: Decimal) -> str:
    """A quantity as people write it: 730, 0.5, 1.25."""
    return format(value.normalize(), "f")


def price_text(value: Decimal) -> str:
    """A price as people write it: $0.50, $1.00, $0.0225."""
    return f"${value:.2f}" if value == value.quantize(CENT) else f"${number(value)}"


def plural(count: Decimal, word: str) -> str:
    return f"{number(count)} {word}{'' if count == 1 else 's'}"


def dec(value) -> Decimal:
    return Decimal(str(value))


class Prices:
    """The price table; remembers which assumptions the estimate used."""

    def __init__(self, table: dict):
        self.table = table
        self.used = set()
        self.notes = []  # what the estimate took for values known only at deploy time, printed with the assumptions

    def price(self, key) -> tuple[Decimal, str]:
        entry = self.table["prices"][key]
        return dec(entry["usd"]), f"{price_text(dec(entry['usd']))} per {entry['per']}"

    def assumption(self, key) -> tuple[Decimal, str]:
        self.used.add(key)
        entry = self.table["assumptions"][key]
        return dec(entry["value"]), f"{number(dec(entry['value']))} {entry['text']} (assumed)"

    @property
    def hours(self) -> tuple[Decimal, str]:
        value = dec(self.table["hours_per_month"])
        return value, f"{number(value)} hours"


# Formulas: (item's entry in the price table, resource name, resource, layer, prices, context) ->
# (amount a month or None when not priced, how it was computed). They read the template with the
# layer's estimator: deploy-time parameters at their defaults.


def fargate(cfg, name, resource, layer, prices, context):
    """DesiredCount tasks all month, each of the task definition's Cpu and Memory."""
    props = resource.get("Properties", {})
    resolver = layer.estimator
    if resolver.value(props.get("LaunchType", "FARGATE")) != "FARGATE":
        return None, "only Fargate services are priced"
    count = props.get("DesiredCount")
    tasks = as_number(resolver.value(count))
    if tasks is None:
        return None, "the number of tasks is not known before deploy"
    references = resolver.references(count)
    source = ", ".join(sorted(references - resolver.deploy_time)) or "DesiredCount"
    decided_by = ", ".join(f"{parameter}={resolver.values[parameter]}" for parameter in sorted(references & resolver.deploy_time))
    definition = props.get("TaskDefinition")
    target = definition.get("Ref") if isinstance(definition, dict) else None
    task = layer.template["Resources"].get(target, {}).get("Properties", {})
    cpu, memory = as_number(resolver.value(task.get("Cpu"))), as_number(resolver.value(task.get("Memory")))
    if cpu is None or memory is None:
        return None, "the task definition's Cpu and Memory are not known before deploy"
    vcpu, gb = cpu / 1024, memory / 1024
    (vcpu_price, vcpu_text), (gb_price, gb_text) = prices.price(cfg["vcpu_price"]), prices.price(cfg["gb_price"])
    hours, hours_text = prices.hours
    per_task = (vcpu * vcpu_price + gb * gb_price) * hours
    context.append({"layer": layer.name, "resource": name, "tasks": tasks, "per_task": per_task})
    basis = (
        f"{plural(tasks, 'task')} ({source}{f' with {decided_by}' if decided_by else ''}, taken as the average) × "
        f"({number(vcpu)} vCPU × {vcpu_text} + {number(gb)} GB × {gb_text}) × {hours_text}"
    )
    return tasks * per_task, basis


def release_overlap(cfg, name, resource, layer, prices, context):
    """A release that shifts traffic runs a second full set of tasks while traffic moves, through the
    bake time and, at most, the pause for tests (params.release_waits, as the review's deploy-time section adds them); a
    rolling one only while the new tasks start, which is not priced."""
    values = layer.estimator.values
    strategy = values.get("DeploymentStrategy")
    if strategy not in inputs.TRAFFIC_SHIFTING:
        return ZERO, f"DeploymentStrategy {strategy}: the old and new tasks overlap only while the new ones start"
    service = next((c for c in context if c["resource"] == name and c["layer"] == layer.name), None)
    if service is None:
        return None, "the service's tasks are not priced"
    waits = params.release_waits(values)
    minutes = params.release_wait_minutes(waits)
    releases, releases_text = prices.assumption(cfg["units"])
    hours, _ = prices.hours
    per_task_hour = service["per_task"] / hours
    amount = service["tasks"] * per_task_hour * Decimal(minutes) / 60 * releases
    basis = (
        f"{plural(service['tasks'], 'task')} × {minutes} min ({wait_terms(waits)}) × {releases_text} × "
        f"${per_task_hour.quantize(Decimal('0.0001'), ROUND_HALF_UP)} a task-hour"
    )
    return amount, basis


def wait_terms(v: dict) -> str:
    """The terms of params.release_wait_minutes in words."""
    pause = f"TestPauseMinutes {v['TestPauseMinutes']} at most" if v["TestPauseMinutes"] else ""
    return " + ".join(term for term in (params.shifting_terms(v), f"BakeTimeMinutes {v['BakeTimeMinutes']}", pause) if term)


def hourly(cfg, name, resource, layer, prices, context):
    price, price_said = prices.price(cfg["price"])
    hours, hours_text = prices.hours
    units, units_text = prices.assumption(cfg["units"]) if "units" in cfg else (Decimal(1), None)
    return units * price * hours, " × ".join(part for part in (units_text, price_said, hours_text) if part)


def public_ipv4(cfg, name, resource, layer, prices, context):
    """An internet-facing load balancer's public IPv4 addresses: one in each of its subnets."""
    props = resource.get("Properties", {})
    if layer.estimator.value(props.get("Scheme", "internet-facing")) != "internet-facing":
        return ZERO, "an internal load balancer has no public address"
    if layer.estimator.value(props.get("IpAddressType", "ipv4")) == "dualstack-without-public-ipv4":
        return ZERO, "no public IPv4 address (IpAddressType dualstack-without-public-ipv4)"
    subnets = layer.estimator.value(props.get("Subnets"))
    listed = subnets.split(",") if isinstance(subnets, str) else subnets if isinstance(subnets, list) else []
    count = len([subnet for subnet in listed if isinstance(subnet, str) and subnet.strip()])
    if not count:
        return None, "its subnets are not known before deploy"
    price, price_said = prices.price(cfg["price"])
    hours, hours_text = prices.hours
    return count * price * hours, f"{count} address{'es' * (count != 1)} × {price_said} × {hours_text}"


def monthly(cfg, name, resource, layer, prices, context):
    price, price_said = prices.price(cfg["price"])
    return price, price_said


def per_unit(cfg, name, resource, layer, prices, context):
    price, price_said = prices.price(cfg["price"])
    units, units_text = prices.assumption(cfg["units"])
    return units * price, f"{units_text} × {price_said}"


def log_group(cfg, name, resource, layer, prices, context):
    """Logs the group receives; vended logs (such as a WAF's, to a group named aws-waf-logs-*) have their own price and volume."""
    group = layer.estimator.value(resource.get("Properties", {}).get("LogGroupName"))
    vended = cfg.get("vended")
    if vended and isinstance(group, str) and group.startswith(vended["name_prefix"]):
        amount, basis = per_unit(vended, name, resource, layer, prices, context)
        return amount, f"{vended['what']}: {basis}"
    return per_unit(cfg, name, resource, layer, prices, context)


def kms_key(cfg, name, resource, layer, prices, context):
    price, price_said = prices.price(cfg["price"])
    rotation = layer.estimator.value(resource.get("Properties", {}).get("EnableKeyRotation"))
    if rotation is True or rotation == "true":
        price_said += f"; {cfg['rotation_note']}"
    return price, price_said


def target_tracking_alarms(cfg, name, resource, layer, prices, context):
    """The alarms Application Auto Scaling creates for a target-tracking policy; other policies have none of their own."""
    kind = layer.estimator.value(resource.get("Properties", {}).get("PolicyType"))
    if kind != "TargetTrackingScaling":
        return Decimal(0), f"{kind} policy: its alarms are resources of their own"
    return per_unit(cfg, name, resource, layer, prices, context)


def alarm(cfg, name, resource, layer, prices, context):
    """Each metric the alarm reads; a period under a minute is high resolution."""
    props = layer.estimator.value(resource.get("Properties", {}))
    if isinstance(props.get("Metrics"), list):
        stats = [m["MetricStat"] for m in props["Metrics"] if isinstance(m, dict) and isinstance(m.get("MetricStat"), dict)]
        metrics, periods = max(len(stats), 1), [as_number(s.get("Period")) for s in stats]
    else:
        metrics, periods = 1, [as_number(props.get("Period"))]
    high = any(period is not None and period < 60 for period in periods)
    price, price_said = prices.price(cfg["high_resolution_price"] if high else cfg["price"])
    return metrics * price, f"{plural(Decimal(metrics), 'metric')} × {price_said}"


def waf_web_acl(cfg, name, resource, layer, prices, context):
    """The web ACL, each of its rules (a rule group counts as one rule) and the requests it inspects."""
    rules = layer.estimator.value(resource.get("Properties", {}).get("Rules", []))
    if not isinstance(rules, list) or any(rule is UNKNOWN for rule in rules):
        return None, "the number of rules is not known before deploy"
    (acl, acl_text), (rule, rule_text), (million, million_text) = (
        prices.price(cfg[key]) for key in ("price", "rule_price", "request_price")
    )
    requests, requests_text = prices.assumption(cfg["request_units"])
    groups = sum(1 for r in rules if isinstance(r, dict) and any("RuleGroup" in key for key in r.get("Statement", {})))
    count = Decimal(len(rules))
    kinds = f" ({plural(count - groups, 'rule')}, {plural(Decimal(groups), 'rule group')})" if groups else ""
    return acl + count * rule + requests * million, (
        f"{acl_text} + {plural(count, 'rule')}{kinds} × {rule_text} + {requests_text} × {million_text}"
    )


# What each formula reads of its item besides label (kms_key's rotation_note only for a rotated key).
# formula name -> (the function, the keys of its price-table entry it reads)
FORMULAS = {
    "hourly": (hourly, ("price",)),
    "public_ipv4": (public_ipv4, ("price",)),
    "monthly": (monthly, ("price",)),
    "per_unit": (per_unit, ("price", "units")),
    "fargate": (fargate, ("vcpu_price", "gb_price")),
    "release_overlap": (release_overlap, ("units",)),
    "target_tracking_alarms": (target_tracking_alarms, ("price", "units")),
    "alarm": (alarm, ("price", "high_resolution_price")),
    "waf_web_acl": (waf_web_acl, ("price", "rule_price", "request_price", "request_units")),
    "log_group": (log_group, ("price", "units")),
    "kms_key": (kms_key, ("price", "rotation_note")),
}


def price_resource(name: str, resource: dict, layer, prices: Prices, env: str, context: list) -> list[Cost]:
    """The cost lines of one resource in one environment."""
    kind = resource["Type"]
    resolver = layer.estimator
    condition = resource.get("Condition")
    created = resolver.condition(condition) if condition else True
    table = prices.table
    if created is False:
        items = table["resource_types"].get(kind, [""])
        return [Cost(name, kind, item, "not created", f"condition {condition} is false in {env}", ZERO, absent=True) for item in items]
    suffix = f"; only if {condition} (decided at deploy time)" if created is None else ""
    if kind in table["resource_types"]:
        lines = []
        for item in table["resource_types"][kind]:
            cfg = table["items"][item]
            off = cfg.get("zero_when")
            absent = off is not None and resolver.values.get(off["parameter"]) == off["value"]
            if absent:
                amount, basis = ZERO, off["reason"]
            else:
                amount, basis = FORMULAS[cfg["formula"]][0](cfg, name, resource, layer, prices, context)
                if cfg.get("note") and amount is not None:
                    basis += f"; {cfg['note']}"
            rounded = None if amount is None else amount.quantize(CENT, ROUND_HALF_UP)
            lines.append(Cost(name, kind, item, cfg["label"], basis + suffix, rounded, absent))
        return lines
    if kind in table["free"]:
        return [Cost(name, kind, "", "no charge", table["free"][kind], ZERO)]
    return [Cost(name, kind, "", "not priced", f"{kind} is not in scripts/prices.yaml", None)]


def estimate(review) -> None:
    """Price every resource of every deployed layer; then the range auto-scaling may add."""
    context = []
    prices = review.prices
    deployed = [layer for layer in review.layers if layer.deployed]
    for layer in deployed:
        for name, resource in sorted(layer.resources.items()):
            layer.costs += price_resource(name, resource, layer, prices, review.env, context)
        for parameter in sorted(layer.estimator.deploy_time_read):
            spec = inputs.DEPLOY_TIME[parameter]
            prices.notes.append(
                f'{layer.name}: priced with {parameter}={spec.default}, its default ({DEPLOY_TIME_TEXT}): "{spec.description}"'
            )
    for layer in deployed:
        for name, resource in sorted(layer.resources.items()):
            if resource["Type"] != "AWS::ApplicationAutoScaling::ScalableTarget":
                continue
            props = layer.estimator.value(resource.get("Properties", {}))
            low, high = as_number(props.get("MinCapacity")), as_number(props.get("MaxCapacity"))
            if props.get("ServiceNamespace") != "ecs" or low is None or high is None or len(context) != 1:
                review.scaling.append(f"{layer.name}.{name}: the tasks it may add are not priced")
                continue
            service = context[0]
            tasks, per_task = service["tasks"], service["per_task"]
            review.scaling.append(
                f"{layer.name}.{name} keeps {service['layer']}.{service['resource']} between {number(low)} (MinCapacity) and "
                f"{number(high)} (MaxCapacity) tasks; the estimate counts {number(tasks)} all month, one task costs "
                f"{money(per_task.quantize(CENT, ROUND_HALF_UP))} a month"
            )
            if high > tasks:
                extra = ((high - tasks) * per_task).quantize(CENT, ROUND_HALF_UP)
                review.scaling.append(f"at MaxCapacity all month: {plural(high - tasks, 'more task')}, +{money(extra)}")
            if low < tasks:
                fewer = ((tasks - low) * per_task).quantize(CENT, ROUND_HALF_UP)
                review.scaling.append(f"at MinCapacity all month: {plural(tasks - low, 'task')} fewer, -{money(fewer)}")
            review.scaling_extra = (high - tasks) * per_task


@dataclass(frozen=True)
class PlanRow:
    """A row of the plan's table (scripts/prices.yaml plan.rows) against the estimate: the cost lines it covers."""

    row: dict
    costs: tuple[Cost, ...] = ()

    @property
    def amount(self) -> Decimal:
        return sum((line.amount for line in self.costs if line.amount is not None), ZERO)

    @property
    def all_absent(self) -> bool:
        """Each of its lines not there in this environment (said with the first one's basis)."""
        return bool(self.costs) and all(line.absent for line in self.costs)


def against_plan(costs: list[Cost], rows: list[dict]) -> tuple[list[PlanRow], list[Cost]]:
    """Each plan row with the cost lines of its items (or of its types, for lines the price table has no item for), and
    the priced lines no row covers. A row of the scaling peak or of a cost outside the layers covers none."""
    matched, counted = [], set()
    for row in rows:
        chosen = [
            (index, line)
            for index, line in enumerate(costs)
            if "scaling_peak_share" not in row
            and "outside" not in row
            and (line.item in row.get("items", []) or (line.type in row.get("types", []) and not line.item))
        ]
        counted |= {index for index, _ in chosen}
        matched.append(PlanRow(row, tuple(line for _, line in chosen)))
    return matched, [line for index, line in enumerate(costs) if index not in counted and line.amount]


def scaling_peak(share: Decimal, extra: Decimal) -> Decimal:
    """What share of a month at MaxCapacity adds to the estimate (extra: the whole month's, unrounded)."""
    return (share * extra).quantize(CENT, ROUND_HALF_UP)


def outside_plan_range(total: Decimal, plan: dict) -> str | None:
    """ "above" or "below" where the estimate leaves the plan's range, None within it."""
    low, high = (dec(bound) for bound in plan["range"])
    return None if low <= total <= high else ("above" if total > high else "below")
