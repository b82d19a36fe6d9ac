"""The layer order comes from the wiring; broken wiring names both ends."""

import pytest

import templates
from templates import WiringError, check_wiring, layer_order


def test_order_is_derived_from_wiring():
    assert layer_order() == ["ci", "cert-dns", "alb", "waf", "release-alarms", "service", "scaling", "alarms"]


def test_order_follows_a_changed_wiring():
    wiring = {("cert-dns", "X"): ("scaling", "Y")}
    assert layer_order(wiring, ["cert-dns", "scaling"]) == ["scaling", "cert-dns"]


def test_cycle_names_both_ends():
    wiring = {**templates.WIRING, ("cert-dns", "ServiceUrl"): ("alb", "ServiceUrl")}
    with pytest.raises(WiringError, match="cycle: .*alb.*cert-dns|cycle: .*cert-dns.*alb"):
        layer_order(wiring)


def test_missing_layer_named():
    with pytest.raises(WiringError, match=r"cdn.DistributionId -> alb.DistributionId: no layer named 'cdn'"):
        layer_order({("alb", "DistributionId"): ("cdn", "DistributionId")})


def built():
    return {name: module.build() for name, module in templates.LAYERS.items()}


def test_missing_output_named():
    with pytest.raises(WiringError, match=r"cert-dns.CertArn -> alb.CertificateArn: layer 'cert-dns' has no output 'CertArn'"):
        check_wiring(built(), {("alb", "CertificateArn"): ("cert-dns", "CertArn")})


def test_missing_parameter_named():
    wiring = {**templates.WIRING, ("service", "Nope"): ("alb", "TargetGroupArn")}
    with pytest.raises(WiringError, match=r"alb.TargetGroupArn -> service.Nope: layer 'service' has no parameter 'Nope'"):
        check_wiring(built(), wiring)


def test_unwired_parameter_without_default_is_refused():
    wiring = {k: v for k, v in templates.WIRING.items() if k != ("alb", "CertificateArn")}
    with pytest.raises(WiringError, match="'alb' parameter 'CertificateArn' has no default and nothing wires it"):
        check_wiring(built(), wiring)


def test_stack_names():
    assert templates.stack_name("prod", "cert-dns") == "startupwebapp-prod-cert-dns"


def test_what_feeds_a_layer_and_what_it_feeds():
    assert templates.wired_into("service") == {
        "TargetGroupArn": ("alb", "TargetGroupArn"),
        "AlternateTargetGroupArn": ("alb", "AlternateTargetGroupArn"),
        "ProductionListenerRuleArn": ("alb", "ProductionListenerRuleArn"),
        "TestListenerRuleArn": ("alb", "TestListenerRuleArn"),
        "DeploymentAlarmNames": ("release-alarms", "DeploymentAlarmNames"),
    }
    assert templates.downstream_of("alb") == {"waf", "release-alarms", "service", "alarms"}
    assert templates.downstream_of("alarms") == set()


def test_each_input_is_wired_from_the_output_of_its_own_name():
    # A swap (the alternate target group's name into the primary's input) passes every check of
    # shape: the names say what each value is, so they must agree, the service's prefixed as read
    # from the service layer.
    mismatched = {
        (downstream, parameter): (upstream, output)
        for (downstream, parameter), (upstream, output) in templates.WIRING.items()
        if parameter not in (output, f"{upstream.title()}{output}")
    }
    assert mismatched == {}
