# Sourced (`. .github/stop-workflow-commands.sh`) by the deploy workflow's steps whose output quotes
# text from outside (a migration's log, stack events, stopped tasks' logs, the service's answers): no
# line of it may run as a workflow command (::error, ::add-mask, ...). The token is unguessable, so a
# line holding it cannot start commands again; they start again when the step's shell exits.
# https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands#stopping-and-starting-workflow-commands
stop=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
echo "::stop-commands::$stop"
trap 'echo "::$stop::"' EXIT
