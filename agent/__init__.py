"""The agent: LangGraph state machine, VLM client, planners, traces, replay and the CLI."""
