"""The use cases: what each thing a user does means, whoever asks (the CLI, a server).

Each takes typed options and returns typed results; how a run is shown (a terminal
view, a WebSocket hub) is passed in as subscribers.

    check     check_flow, check_flow_document, missing_tools, version_warnings,
              tool_problems
    policy    check_policies, admit (start_run calls it first), record_refusal
    run       start_run (RunOptions -> RunReport), RunControl, RunView
    resume    plan_resume, resume_run
    history   list_runs, show_run, log_files, follow_log, usage, export_run, gc,
              earlier_results
    rehearse  rehearsal (the simulated provider for `corral rehearse`)
    location  where `.corral`, its logs and its default history are
    header    a run's id and its first event (RunStarted)
"""
