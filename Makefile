# StartupWebApp deployment: `make help` lists the targets.
PYTHON ?= python3
# A value as one shell word, whatever quotes it holds: CMD="python manage.py shell -c 'print(1)'".
override quote = '$(subst ','\'',$(1))'
override define NEWLINE


endef
# A value (or a name) a message shows: its control characters (but tab) as ?, not sent to the terminal (an ESC that
# redraws the line); any other text as typed.
override printed = LC_ALL=C tr '\001-\010\013-\037\177' '[?*]'
override shown = $(shell printf '%s' $(call quote,$(1)) | $(printed))

$(if $(filter-out default undefined,$(origin MAKECMDGOALS)),$(error MAKECMDGOALS: make's own, set from the targets given; allowed: none on the command line nor in the shell's environment))
# The values the targets take count only when given on make's command line (with make -e too): an
# exported YES=1 or ENV=prod left in a shell must not change what a deploy does, and POSIX shells
# use ENV for their startup file.
override COMMAND_LINE_ONLY := ENV STACK TAG CHANGESET YES ALLOW_REPLACE ALLOW_TRAFFIC_RESET RECREATE REPAIR MAX_WAIT TIMEOUT CONNECT_TO \
	CA_BUNDLE TEST_LISTENER ACTION CMD SINCE FOLLOW UPGRADE
# Any other value on make's command line that holds a $ is refused: make would expand it where this file or a recipe's
# environment reads it (VENV='$(shell ...)' as this file is read, FOO='$(shell ...)' exported to every recipe), and
# unexported it would reach no recipe, unsaid. Those above the recipes read as text ($(value ...), quote below).
# VENV= and BIN= (the Makefile's own, which the tests point elsewhere) go into commands unquoted: a path on one line,
# or refused.
$(foreach v,VENV BIN,$(if $(filter command line,$(origin $(v))),$(if $(findstring $(NEWLINE),$(value $(v)))$(shell printf '%s' $(call quote,$(value $(v))) | LC_ALL=C grep -qx '[A-Za-z0-9_./-]\{1,\}' || echo no),$(error $(v)=$(call shown,$(value $(v))): allowed: a path of letters, digits and _ . / -, on one line))))
override WITH_DOLLAR := $(filter-out $(COMMAND_LINE_ONLY),$(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(if $(findstring $$,$(value $(v))),$(v)))))
# The targets that run the deployer refuse a name they do not take (below, where this file's names it sets are read):
# a misspelt TGA='v$1' given to one is such a name, not a value to set in the shell's environment, where the deployer
# would not read it and make deploy would keep the running image.
# deploy, destroy and purge take every layer without STACK= (EVERY_LAYER_WITHOUT_STACK, below); the others one.
override EVERY_LAYER_TARGETS := deploy destroy purge
override DEPLOYER_TARGETS := unlock zone changeset execute status outputs events diff drift recover rollback verify continue task logs releases
override RUNS_THE_DEPLOYER := $(firstword $(filter $(EVERY_LAYER_TARGETS) $(DEPLOYER_TARGETS),$(MAKECMDGOALS)))
# What each target that runs the deployer takes (ALLOWED_FOR): a name it does not take (a misspelt ACTION=ROLLBACK, an
# IMAGE_TAG=v2 for TAG=) would be ignored, and make continue would then send CONTINUE, make rollback
# go back by the history, make task run the running image. Each takes the values every deployer run is
# given (refused there where they do not apply, as TAG= and CHANGESET= are) and its own.
override DEPLOYER_VALUES := ENV STACK TAG CHANGESET YES ALLOW_REPLACE ALLOW_TRAFFIC_RESET RECREATE REPAIR MAX_WAIT PYTHON
# The refusal names as allowed only what the target uses: TAG=, REPAIR=, CHANGESET=, ALLOW_REPLACE=,
# ALLOW_TRAFFIC_RESET=, RECREATE=, YES= and MAX_WAIT= where the deployer takes them (scripts/deploy/__init__.py
# TAKES_TAG, TAKES_REPAIR, TAKES_ALLOW, TAKES_RECREATE, TAKES_YES and TAKES_MAX_WAIT, tests/test_workflows.py
# keeping these alike).
override TAG_TARGETS := deploy changeset diff rollback task
override REPAIR_TARGETS := deploy changeset rollback
override CHANGESET_TARGETS := execute
override ALLOW_REPLACE_TARGETS := deploy execute rollback
override ALLOW_TRAFFIC_RESET_TARGETS := $(ALLOW_REPLACE_TARGETS)
override RECREATE_TARGETS := deploy changeset
override YES_TARGETS := deploy execute destroy purge recover rollback zone unlock task continue
override MAX_WAIT_TARGETS := deploy changeset execute destroy recover rollback task
override TARGETED_VALUES := TAG REPAIR CHANGESET ALLOW_REPLACE ALLOW_TRAFFIC_RESET RECREATE YES MAX_WAIT
# unlock and zone work on the whole environment: no STACK= (scripts/deploy/__init__.py TAKES_NO_STACK)
override NO_STACK_TARGETS := unlock zone
override ALLOWED_FOR = $(filter-out $(if $(filter $(1),$(NO_STACK_TARGETS)),STACK) $(foreach v,$(TARGETED_VALUES),$(if $(filter $(1),$($(v)_TARGETS)),,$(v))),$(DEPLOYER_VALUES)) $(OWN_VALUES_$(1))
override OWN_VALUES_zone := TIMEOUT
override OWN_VALUES_verify := TIMEOUT CONNECT_TO CA_BUNDLE TEST_LISTENER
override OWN_VALUES_continue := ACTION
override OWN_VALUES_task := CMD
override OWN_VALUES_logs := SINCE FOLLOW
override COMMA := ,
# The refusal of names (1) that target (2) does not take, with (3) beside: one text for the three places that refuse.
# A value other targets take names them (MAX_WAIT= to make purge); one name alone, its like among those allowed
# (yes=1, STAK=alarms: closest, below).
override not_taken = $(call shown,$(1)): not a value make $(2) takes$(if $(filter $(EVERY_LAYER_TARGETS),$(2)),$(if $(filter command line,$(origin STACK)),,$(COMMA) and without STACK it takes every layer))$(call taken_by_others,$(1))$(call close_name,$(1),$(2)); allowed: $(strip $(call ALLOWED_FOR,$(2))) ($(3))
override taken_by_others = $(foreach v,$(filter $(TARGETED_VALUES),$(1)),; $(v)= is for make $(subst $(SPACE),$(COMMA)$(SPACE),$(strip $($(v)_TARGETS))))
override close_name = $(if $(or $(word 2,$(1)),$(filter $(TARGETED_VALUES),$(1))),,$(foreach c,$(call closest,$(1),$(call ALLOWED_FOR,$(2))), (did you mean $(c)?)))
# The one of words (2) closest to word (1), case aside (make stauts, yes=1), as the tools name a mistyped layer or
# environment: Python's difflib, of the interpreter the virtual environment is made with (none found: nothing), not
# templates/params.py's did_you_mean, which needs PyYAML from a .venv that may not be made yet.
override closest = $(shell $(PYTHON) -c 'import difflib, sys; by = {w.lower(): w for w in sys.argv[2:]}; print(*(by[w] for w in difflib.get_close_matches(sys.argv[1].lower(), list(by), n=1)))' $(call quote,$(1)) $(2) 2>/dev/null)
override SPACE := $(subst ,, )
override SET_IN_THE_SHELL := AWS settings such as AWS_PROFILE go in the shell's environment
override NOT_FOR_THE_DEPLOYER := $(if $(RUNS_THE_DEPLOYER),$(filter-out PYTHON,$(WITH_DOLLAR)))
ifneq ($(NOT_FOR_THE_DEPLOYER),)
$(error $(call not_taken,$(NOT_FOR_THE_DEPLOYER),$(RUNS_THE_DEPLOYER),and holding $$$(COMMA) which make would expand: run what $$(...) holds))
endif
ifneq ($(WITH_DOLLAR),)
$(error $(call shown,$(WITH_DOLLAR)): a value holding $$, which make would expand (run what $$(...) holds) before a recipe gets it; set it in the shell's environment instead: $(call shown,$(firstword $(WITH_DOLLAR)))='...' make ...)
endif
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
# Reset with override, which also holds under make -e, rather than undefine, which GNU make 3.81
# (macOS) does not have.
FROM_ENVIRONMENT := $(strip $(foreach v,$(COMMAND_LINE_ONLY),$(if $(filter environment,$(firstword $(origin $(v)))),$(v))))
# Left out, STACK means every layer: a STACK=alarms exported in the shell must not turn a destroy (or a
# deploy) of one layer into one of all of them.
EVERY_LAYER_WITHOUT_STACK := $(firstword $(filter $(EVERY_LAYER_TARGETS),$(MAKECMDGOALS)))
ifneq ($(and $(filter STACK,$(FROM_ENVIRONMENT)),$(EVERY_LAYER_WITHOUT_STACK)),)
$(error STACK is set in the shell's environment, which make does not take, and without STACK $(EVERY_LAYER_WITHOUT_STACK) means every layer: give it on the command line (make $(EVERY_LAYER_WITHOUT_STACK) STACK=<layer>), or unset STACK for every layer)
endif
# make takes any NAME=value and ignores a name it does not use, and runs the targets before a word it
# has no target for: a misspelt STACK (STAK=alarms, stack=alarms, or alarms alone) would leave STACK
# out, and so take every layer. These three refuse both, typed at a shell (at MAKELEVEL 0: under
# another make, the names on its own command line reach this one through MAKEFLAGS).
TARGETS := help venv lock templates check test lint bench clean review sandbox sandbox-stop sandbox-status \
	deploy changeset execute status outputs events diff drift destroy purge recover rollback verify zone unlock \
	task logs continue releases
ifeq ($(MAKELEVEL)$(if $(EVERY_LAYER_WITHOUT_STACK),,-),0)
TAKEN := $(call ALLOWED_FOR,$(EVERY_LAYER_WITHOUT_STACK))
NOT_TAKEN := $(filter-out $(TAKEN),$(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v))))
ifneq ($(NOT_TAKEN),)
$(error $(call not_taken,$(NOT_TAKEN),$(EVERY_LAYER_WITHOUT_STACK),$(SET_IN_THE_SHELL)))
endif
NOT_TARGETS := $(filter-out $(TARGETS),$(MAKECMDGOALS))
ifneq ($(NOT_TARGETS),)
$(error $(call shown,$(NOT_TARGETS)): not a make target, and $(EVERY_LAYER_WITHOUT_STACK) would run before make stops at it$(if $(filter command line,$(origin STACK)),,$(COMMA) on every layer without STACK); name a layer with STACK=<layer>)
endif
endif
# Left out, TAG means the service's running image (the release before it for rollback) and ACTION means CONTINUE:
# as with STACK above, a TAG=v1 or ACTION=ROLLBACK exported in the shell must not turn into them, which would roll
# back to another image, run a task of another, or move production traffic where a rollback was meant.
# Only where the service is run: rollback and task, and deploy, changeset and diff of the service or of every layer
# (of another layer, TAG= is refused and its absence changes nothing).
WITHOUT_TAG = $(if $(filter rollback,$(1)),goes back to the release before the running one,takes the service's running image)
TAG_GOAL := $(firstword $(filter $(TAG_TARGETS),$(MAKECMDGOALS)))
STACK_GIVEN := $(if $(filter command line,$(firstword $(origin STACK))),$(value STACK))
TAG_RUNS_SERVICE := $(or $(filter rollback task,$(TAG_GOAL)),$(if $(STACK_GIVEN),$(filter service,$(STACK_GIVEN)),$(TAG_GOAL)))
ifneq ($(and $(filter TAG,$(FROM_ENVIRONMENT)),$(TAG_RUNS_SERVICE)),)
$(error TAG is set in the shell's environment, which make does not take, and without TAG make $(TAG_GOAL) $(call WITHOUT_TAG,$(TAG_GOAL)): give it on the command line (make $(TAG_GOAL) TAG=<tag>), or unset TAG)
endif
ifneq ($(and $(filter ACTION,$(FROM_ENVIRONMENT)),$(filter continue,$(MAKECMDGOALS))),)
$(error ACTION is set in the shell's environment, which make does not take, and without ACTION make continue sends CONTINUE, which moves production traffic to the release: give it on the command line (make continue ACTION=ROLLBACK), or unset ACTION)
endif
ifeq ($(MAKELEVEL),0)
# A word that is no target (make continue ACTION= ROLLBACK) would be run after the target, as make does.
NOT_A_TARGET := $(if $(filter $(DEPLOYER_TARGETS),$(MAKECMDGOALS)),$(filter-out $(TARGETS),$(MAKECMDGOALS)))
ifneq ($(NOT_A_TARGET),)
$(error $(call shown,$(NOT_A_TARGET)): not a make target, and make $(firstword $(filter $(DEPLOYER_TARGETS),$(MAKECMDGOALS))) would run before make stops at it; a value goes as NAME=value, with no space around = (ACTION=ROLLBACK, TAG=v1))
endif
# Any other misspelt target (make delpoy): make's own "No rule to make target" names no way on. One
# whose first word is a target's (sandbox-start) names the targets that start with it.
NO_SUCH_TARGET := $(filter-out $(TARGETS),$(MAKECMDGOALS))
ifneq ($(NO_SUCH_TARGET),)
FIRST_WORD := $(firstword $(subst -, ,$(firstword $(NO_SUCH_TARGET))))
LIKE := $(if $(filter $(FIRST_WORD),$(TARGETS)),$(filter $(FIRST_WORD)%,$(TARGETS)))
# Else the closest one (make stauts).
CLOSE := $(if $(LIKE),,$(call closest,$(firstword $(NO_SUCH_TARGET)),$(TARGETS)))
$(error $(call shown,$(firstword $(NO_SUCH_TARGET))): not a make target$(if $(LIKE),$(COMMA) like $(LIKE))$(if $(CLOSE), (did you mean $(CLOSE)?)); make help lists them)
endif
ON_COMMAND_LINE := $(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v)))
REFUSING := $(firstword $(foreach g,$(filter $(DEPLOYER_TARGETS),$(MAKECMDGOALS)),$(if $(filter-out $(DEPLOYER_VALUES) $(OWN_VALUES_$(g)),$(ON_COMMAND_LINE)),$(g))))
ifneq ($(REFUSING),)
$(error $(call not_taken,$(filter-out $(DEPLOYER_VALUES) $(OWN_VALUES_$(REFUSING)),$(ON_COMMAND_LINE)),$(REFUSING),$(SET_IN_THE_SHELL)))
endif
endif
# The note's command names only what the target takes: make status TAG=... would be refused.
GOAL := $(or $(firstword $(MAKECMDGOALS)),help)
TAKEN_BY_review := ENV
TAKEN_BY_lock := UPGRADE
TAKEN_BY_GOAL = $(or $(TAKEN_BY_$(GOAL)),$(if $(filter $(GOAL),$(EVERY_LAYER_TARGETS) $(DEPLOYER_TARGETS)),$(call ALLOWED_FOR,$(GOAL))))
# TAG= and REPAIR= are the service layer's: with STACK= of another on the command line, the deployer refuses them.
NOT_FOR_THE_STACK = $(if $(filter command line,$(origin STACK)),$(if $(filter-out service,$(value STACK)),TAG REPAIR))
SUGGESTED = $(filter-out $(NOT_FOR_THE_STACK),$(filter $(TAKEN_BY_GOAL),$(FROM_ENVIRONMENT)))
ifneq ($(FROM_ENVIRONMENT),)
$(shell echo "note: ignored, as the shell's environment sets them: $(FROM_ENVIRONMENT) ($(if $(SUGGESTED),make takes values from its command line only: make $(GOAL) $(patsubst %,%=...,$(SUGGESTED)),$(if $(filter $(NOT_FOR_THE_STACK),$(FROM_ENVIRONMENT)),make $(GOAL) of that layer takes none of them: TAG= and REPAIR= are the service layer's,make $(GOAL) takes none of them; make help lists what each target takes)))" >&2)
$(foreach v,$(FROM_ENVIRONMENT),$(eval override $(v) := $(if $(filter ENV,$(v)),sandbox)))
endif
# Deploys go to ENV (default: the local sandbox; every other environment must be named).
ENV ?= sandbox
# make would export them to every recipe's environment, expanding them as it does: TAG='$(shell ...)'
# would run there. The recipes pass them as arguments, read with $(value ...) (quote, below); PYTHON and BENCH_RUNS,
# which the shell's environment may set too (where make would expand PYTHON='$(shell ...)' in a recipe), as well.
unexport $(COMMAND_LINE_ONLY)
WITH_NEWLINE := $(strip $(foreach v,$(COMMAND_LINE_ONLY),$(if $(findstring $(NEWLINE),$(value $(v))),$(v))))
ifneq ($(WITH_NEWLINE),)
$(error $(call shown,$(WITH_NEWLINE)): a value on more than one line; allowed: one line)
endif
# Switches take 1 or nothing: YES=0 or ALLOW_REPLACE=false must not mean yes.
SWITCHES := YES ALLOW_REPLACE ALLOW_TRAFFIC_RESET RECREATE REPAIR TEST_LISTENER FOLLOW
NOT_ONE := $(strip $(foreach v,$(SWITCHES),$(if $(value $(v)),$(if $(filter-out 1,$(value $(v)))$(word 2,$(value $(v))),$(v)))))
ifneq ($(NOT_ONE),)
$(error $(firstword $(NOT_ONE))=$(call shown,$(value $(firstword $(NOT_ONE)))): allowed: 1, or leave it out)
endif

DEPLOY := $(BIN)/python -m scripts.deploy
FLAGS = --env=$(call quote,$(value ENV)) $(if $(filter command line,$(origin STACK)),--stack=$(call quote,$(value STACK))) $(if $(filter command line,$(origin TAG)),--image-tag=$(call quote,$(value TAG))) \
	$(if $(filter command line,$(origin CHANGESET)),--changeset=$(call quote,$(value CHANGESET))) \
	$(if $(value YES),--yes) $(if $(value ALLOW_REPLACE),--allow-replace) $(if $(value ALLOW_TRAFFIC_RESET),--allow-traffic-reset) $(if $(value RECREATE),--recreate) $(if $(value REPAIR),--repair) \
	$(if $(filter command line,$(origin MAX_WAIT)),--max-wait=$(call quote,$(value MAX_WAIT)))
# ENV=sandbox points the AWS clients at the running sandbox; where it cannot be used, it unsets AWS_ENDPOINT_URL and
# passes why (SANDBOX_PROBLEM), which the deployer says once it has checked the command's own values and refuses:
# a rehearsal never falls through to real AWS credentials.
AWS = $(if $(filter sandbox,$(value ENV)),e="$$($(BIN)/python -m emulator.sandbox env --defer-problem)" && eval "$$e" &&,)
FRESH = $(BIN)/python generate.py --check --env=$(call quote,$(value ENV)) &&
# make rollback reads the service layer's files alone (the image is the one change): another layer's stale
# file (an edit of its params not generated yet) must not hold back a rollback in an incident.
FRESH_SERVICE = $(BIN)/python generate.py --check --env=$(call quote,$(value ENV)) --layer=service &&
# STACK= given empty (STACK=$LAYER with LAYER unset) is passed on, and refused, rather than left out,
# which would mean every layer: `make destroy STACK= YES=1` would destroy them all. TAG= likewise: left
# out, a rollback goes back by the release history. So is every value but a switch: an empty ACTION= left
# out sent CONTINUE, an empty CONNECT_TO= sent make verify's checks to the public host.
# Values are read with $(value ...): as given, a `$` in them is not expanded by make (TAG='v1$x'
# stayed v1; TAG='$(shell ...)' ran the command), each as one shell word (quote, above).
# Passed as --option=value, so that a value starting with "-" (TAG=-x) is read as the value, not an option.

.DEFAULT_GOAL := help
.PHONY: $(TARGETS)

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'
	@echo
	@echo "  ENV=<env>      an environment of params/ (default: sandbox, the local sandbox; every other one must be named)"
	@if test -x $(BIN)/python; then echo "  STACK=<layer>  one layer: $$($(BIN)/python generate.py --order)"; \
		else echo "  STACK=<layer>  one layer (README: Layers and their order)"; fi
	@echo "  Values are taken from make's command line only (make deploy ENV=prod STACK=service), never from the shell's environment."
	@echo "  PYTHON=python3.12  the interpreter .venv is made with (make venv); BENCH_RUNS=5  runs per figure of make bench"

# .venv is made when there is none. One whose Python does not run (uninstalled since) or has no pip (its making
# failed half way: Debian and Ubuntu leave the interpreter alone when python3-venv is missing) is said, never
# emptied: the cause may be this shell's (a library path), and what it holds may be someone's work (make clean
# refuses such a .venv: its Python cannot say whether the sandbox runs). Asked with -I and
# find_spec, which no PYTHON* variable nor pip setting (PIP_*, pip.conf) can fail.
$(INSTALLED): requirements.txt
	@test -e $(VENV) || test -L $(VENV) || $(call quote,$(value PYTHON)) -m venv $(VENV)
	@$(BIN)/python -I -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("pip") is None)' || { \
		echo "error: $(VENV) is a virtual environment whose Python does not run or has no pip (its making failed half way, or its Python was uninstalled): remove it (rm -rf $(VENV)), then make makes it again" >&2; exit 2; }
	@echo "installing pinned dependencies into $(VENV) (once; about a minute the first time)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(INSTALLED) ## create .venv with the pinned dependencies

# pip-compile keeps every pin of requirements.txt it is not told to upgrade, and writes the file
# atomically. It asks the package index: once .venv is installed, lock is the one target that needs a network. Its warning
# that pip and setuptools are not pinned is about pip-tools' own requirements: the venv brings pip,
# installs go with --no-deps, and nothing here imports setuptools.
lock: $(INSTALLED) ## write requirements.txt (pins and hashes) from requirements.in; UPGRADE=<package> moves one it does not pin to its newest release
	@CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url \
		--no-emit-find-links $(if $(value UPGRADE),--upgrade-package=$(call quote,$(value UPGRADE))) -o requirements.txt requirements.in

# A value given to a target that does not take it (make templates STACK=alb, make sandbox-stop ENV=prod) is
# said to be unused rather than silently ignored: $(call unused,<what the target does>,<names>).
# ANY_VALUE: every name a target takes (but PYTHON, which picks the venv's interpreter for every target).
ANY_VALUE := $(filter-out PYTHON,$(DEPLOYER_VALUES)) $(sort $(foreach g,$(DEPLOYER_TARGETS),$(OWN_VALUES_$(g)))) UPGRADE
unused = @$(foreach v,$(2),$(if $(filter command line,$(origin $(v))),printf '%s %s %s\n' "note: make $@ takes no $(v)= (it $(1)):" $(call quote,$(value $(v))) "left unused" | $(printed) >&2;)) true
# The sandbox targets work on ENV=sandbox alone: that one given is no value left unused.
ANY_VALUE_BUT_SANDBOX_ENV = $(if $(filter sandbox,$(value ENV)),$(if $(filter-out sandbox,$(value ENV)),$(ANY_VALUE),$(filter-out ENV,$(ANY_VALUE))),$(ANY_VALUE))

templates: $(INSTALLED) ## generate output/ from templates/ and params/, then cfn-lint it
	$(call unused,generates every environment in params/ and every layer,$(ANY_VALUE))
	@$(BIN)/python generate.py

check: $(INSTALLED) ## fail if output/ or a review document in output/review/ is stale (or cfn-lint rejects a template)
	$(call unused,checks every environment in params/ and every layer,$(ANY_VALUE))
	@$(BIN)/python generate.py --check
	@$(BIN)/python -m scripts.review --check
	@echo "output/ and output/review/ are current"

# Bytecode is written even where PYTHONDONTWRITEBYTECODE is set: pytest keeps each test module's
# rewritten asserts in __pycache__ (git-ignored), and every deploy and sandbox process the tests
# start then loads the project's modules compiled; without it, each compiles them again.
test: $(INSTALLED) ## run every test: pytest (goldens, cfn-lint, checkov, actionlint, sandbox), ruff
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lint: $(INSTALLED) ## ruff check and format check only
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# ENV has a default (sandbox): `make review` reviews every environment unless ENV is given on the command line.
review: $(INSTALLED) ## write output/review/<env>.md for every environment (ENV=<env>: that one): what ops read before the console
	$(call unused,reviews every layer of the environment,$(filter-out ENV,$(ANY_VALUE)))
	@$(BIN)/python -m scripts.review $(if $(filter command line,$(origin ENV)),--env=$(call quote,$(value ENV)))

sandbox: $(INSTALLED) ## start the local AWS sandbox (moto on 127.0.0.1) seeded with the Phase 5.14 resources
	$(call unused,starts the one local sandbox: ENV=sandbox,$(ANY_VALUE_BUT_SANDBOX_ENV))
	@$(BIN)/python -m emulator.sandbox start

sandbox-stop: $(INSTALLED) ## stop the sandbox
	$(call unused,stops the one local sandbox: ENV=sandbox,$(ANY_VALUE_BUT_SANDBOX_ENV))
	@$(BIN)/python -m emulator.sandbox stop

sandbox-status: $(INSTALLED) ## say whether the sandbox runs and answers
	$(call unused,says whether the one local sandbox runs: ENV=sandbox,$(ANY_VALUE_BUT_SANDBOX_ENV))
	@$(BIN)/python -m emulator.sandbox status

unlock: $(INSTALLED) ## free ENV's deploy lock that a run which died left behind (says whose, asks first) [YES=1]
	@$(AWS) $(DEPLOY) unlock $(FLAGS)

zone: $(INSTALLED) ## find or create ENV's public hosted zone, print its name servers for the registrar, wait for the delegation [YES=1 TIMEOUT=s]
	@$(AWS) $(DEPLOY) zone $(FLAGS) $(if $(filter command line,$(origin TIMEOUT)),--timeout=$(call quote,$(value TIMEOUT)))

deploy: $(INSTALLED) ## deploy STACK (default: every layer, in order) to ENV through change sets [TAG= YES=1 ALLOW_REPLACE=1 ALLOW_TRAFFIC_RESET=1 RECREATE=1 REPAIR=1 MAX_WAIT=min]
	@$(FRESH) $(AWS) $(DEPLOY) deploy $(FLAGS)

changeset: $(INSTALLED) ## create and print STACK's change set for ENV, and leave it for review [TAG= REPAIR=1 RECREATE=1 MAX_WAIT=min]
	@$(FRESH) $(AWS) $(DEPLOY) changeset $(FLAGS)

execute: $(INSTALLED) ## execute the reviewed CHANGESET of STACK in ENV (asks first) [YES=1 ALLOW_REPLACE=1 ALLOW_TRAFFIC_RESET=1 MAX_WAIT=min]
	@$(FRESH) $(AWS) $(DEPLOY) execute $(FLAGS)

status: $(INSTALLED) ## one line per layer of ENV (or STACK's): stack, status, last change [STACK=]
	@$(AWS) $(DEPLOY) status $(FLAGS)

outputs: $(INSTALLED) ## the outputs of STACK (default: every layer) in ENV
	@$(AWS) $(DEPLOY) outputs $(FLAGS)

events: $(INSTALLED) ## the latest events of STACK in ENV (destroyed: of its stack deleted last)
	@$(AWS) $(DEPLOY) events $(FLAGS)

diff: $(INSTALLED) ## template and parameters of STACK against what ENV runs (fails when they differ) [TAG=]
	@$(FRESH) $(AWS) $(DEPLOY) diff $(FLAGS)

drift: $(INSTALLED) ## CloudFormation drift detection on STACK (default: every layer) of ENV: what was changed outside it (fails when drifted)
	@$(AWS) $(DEPLOY) drift $(FLAGS)

destroy: $(INSTALLED) ## delete STACK (refused while consumed), or every layer in reverse order; lists what is retained, asks first [YES=1 MAX_WAIT=min]
	@$(AWS) $(DEPLOY) destroy $(FLAGS)

purge: $(INSTALLED) ## delete what ENV's destroyed stacks (STACK's, default every layer's) retained, only that; lists it, asks [YES=1]
	@$(AWS) $(DEPLOY) purge $(FLAGS)

recover: $(INSTALLED) ## continue STACK's rollback after UPDATE_ROLLBACK_FAILED (default: the one layer stuck so; asks first) [YES=1 MAX_WAIT=min]
	@$(AWS) $(DEPLOY) recover $(FLAGS)

rollback: $(INSTALLED) ## put the previous image (or TAG=) back on STACK=service through a change set, without rollback triggers [TAG= YES=1 ALLOW_REPLACE=1 ALLOW_TRAFFIC_RESET=1 MAX_WAIT=min]
	@$(FRESH_SERVICE) $(AWS) $(DEPLOY) rollback $(FLAGS)

verify: $(INSTALLED) ## check the deployed STACK=service: rollout, targets, redirect, health check, certificate, smoke checks [TEST_LISTENER=1 TIMEOUT=s CONNECT_TO="host:port:addr:port ..." CA_BUNDLE=file]
	@$(AWS) $(DEPLOY) verify $(FLAGS) $(if $(filter command line,$(origin TIMEOUT)),--timeout=$(call quote,$(value TIMEOUT))) $(if $(filter command line,$(origin CONNECT_TO)),$(or $(foreach c,$(value CONNECT_TO),--connect-to=$(call quote,$(c))),--connect-to='')) \
		$(if $(filter command line,$(origin CA_BUNDLE)),--ca-bundle=$(call quote,$(value CA_BUNDLE))) $(if $(value TEST_LISTENER),--test-listener)

continue: $(INSTALLED) ## let ENV's release that waits for tests (TestPauseMinutes) move production traffic, or ACTION=ROLLBACK it [YES=1]
	@$(AWS) $(DEPLOY) continue $(FLAGS) $(if $(filter command line,$(origin ACTION)),--action=$(call quote,$(value ACTION)))

task: $(INSTALLED) ## run CMD="python manage.py migrate" once as a task of ENV's service, streaming its log; exits with its exit code [TAG= YES=1 MAX_WAIT=min]
	@$(AWS) $(DEPLOY) task $(FLAGS) --cmd=$(call quote,$(value CMD))

logs: $(INSTALLED) ## print ENV's service logs with task ids [SINCE=10m (30s, 2h, 1d) FOLLOW=1: until Ctrl-C]
	@$(AWS) $(DEPLOY) logs $(FLAGS) $(if $(filter command line,$(origin SINCE)),--since=$(call quote,$(value SINCE))) $(if $(value FOLLOW),--follow)

releases: $(INSTALLED) ## ENV's service releases make rollback reads, newest first, and the image that runs
	@$(AWS) $(DEPLOY) releases $(FLAGS)

bench: $(INSTALLED) ## print performance figures (medians)
	@$(if $(filter command line,$(origin BENCH_RUNS)),BENCH_RUNS=$(call quote,$(value BENCH_RUNS))) $(BIN)/python bench.py

# The sandbox server runs on the virtual environment's Python: removed under it, stopping it would
# first need a new one installed. Refused while it runs.
clean: ## remove the virtual environment and caches (not output/); refused while the sandbox runs
	@# 3: not running; any other status (it runs, or the check itself failed in a broken .venv) refuses
	@if test -x $(BIN)/python; then $(BIN)/python -c 'import sys; from emulator.sandbox import Sandbox; sys.exit(0 if Sandbox().running() else 3)' 2>/dev/null; \
		status=$$?; if test $$status -ne 3; then \
		echo "error: the sandbox may run on $(VENV)'s Python: make sandbox-stop first (what is deployed in it goes with it), then make clean" >&2; exit 1; fi; fi
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
