# agent: the node agent's Go half, loaded by the background worker after fork (never in the
# postmaster), linked like the engine with async preemption off (see ENGINE_LDFLAGS).
# Its tests run with test-go: go test ./bgworker/... and the integration tests in pgext/.

SHLIBS += $(BUILD)/borealis_agent.so

$(BUILD)/borealis_agent.so: $(GO_SOURCES) pgext/src/agent_abi.h
	@mkdir -p $(BUILD)
	$(GO) build -buildmode=c-shared -ldflags='$(ENGINE_LDFLAGS)' -o $@ ./bgworker/agentlib

# The agent's sampling cost (bench/results/agent.md): the real worker, then the /proc half.
.PHONY: bench-agent
bench-agent:
	$(GO) test -run '^$$' -bench NodeAgentSample -benchtime 30x ./pgext/
	$(GO) test -run '^$$' -bench . -benchtime 2s ./bgworker/
