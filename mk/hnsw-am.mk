# borealis_hnsw (issue 6). PGXS does not track header dependencies, and a stale object built
# against an older engine.h calls the wrong engine function: drop objects older than any header.
.PHONY: pgext-header-deps
pgext: pgext-header-deps
pgext-header-deps:
	@for o in pgext/src/*.o; do \
		[ -e "$$o" ] || continue; \
		for h in pgext/src/*.h; do \
			if [ "$$h" -nt "$$o" ]; then rm -f "$$o"; break; fi; \
		done; \
	done

# The engine reads the type and metric codes from this header through cgo.
$(BUILD)/borealis_engine.so: pgext/src/hnswtypes.h
