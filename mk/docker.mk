# docker: the dev-cluster image (docker/) and the testcontainers module's integration suite
# (testcontainers/borealis, examples/). `make image` builds borealis:<version> and tags
# borealis:dev; `make test` runs test-docker, which installs Debian's docker.io and starts dockerd
# when needed (scripts/docker.sh), builds the image and runs the suite against it.
#
# The base image is a debootstrap rootfs loaded with `docker import` (no registry), cached in
# /var/cache/borealis and as borealis-base:<hash>; the first build takes minutes (20 on this
# 2-core machine at load 28), later ones reuse it. Artefacts are compiled on the host and staged into $(DOCKER_CTX)/root at their install
# paths, so the image holds no compiler. The prune after a build removes only the dangling
# Borealis images older than an hour: a build running beside it (another checkout, another
# `make test`) holds untagged intermediate images, and pruning those failed that build with
# "failed to get digest ... no such file or directory" (seen on this machine, stop 16).

DOCKER        ?= /usr/bin/docker
IMAGE_NAME    ?= borealis
IMAGE_VERSION := $(shell sed -n 's/^const Version = "\(.*\)"/\1/p' cmd/borealis/version.go)
DOCKER_CTX    := $(BUILD)/docker
PG_SHAREDIR    = $(shell $(PG_CONFIG) --sharedir)
# The suite's containers; docker.test runs with -tags docker so `go test ./...` never needs Docker.
DOCKER_TEST_TIMEOUT ?= 20m

TEST_TARGETS += test-docker

.PHONY: image docker-daemon test-docker

docker-daemon:
	@bash scripts/docker.sh daemon

image: build docker-daemon
	@set -e; base=$$(bash scripts/docker.sh base); \
	rm -rf $(DOCKER_CTX); mkdir -p $(DOCKER_CTX)/root; \
	$(MAKE) -s $(PGXS_ARGS) install DESTDIR=$(DOCKER_CTX)/root >/dev/null; \
	install -m 755 -t $(DOCKER_CTX)/root$(PKGLIBDIR)/ $(SHLIBS); \
	install -D -m 755 $(BUILD)/borealis $(DOCKER_CTX)/root/usr/local/bin/borealis; \
	ls $(PG_SHAREDIR)/extension/vector.control >/dev/null 2>&1 || { echo "pgvector is not installed: run scripts/deps.sh" >&2; exit 1; }; \
	install -m 755 -t $(DOCKER_CTX)/root$(PKGLIBDIR)/ $(PKGLIBDIR)/vector.so; \
	install -m 644 -t $(DOCKER_CTX)/root$(PG_SHAREDIR)/extension/ $(PG_SHAREDIR)/extension/vector.control $(PG_SHAREDIR)/extension/vector--*.sql; \
	strip --strip-debug $(DOCKER_CTX)/root$(PKGLIBDIR)/*.so $(DOCKER_CTX)/root/usr/local/bin/borealis; \
	cp -a docker/rootfs/. $(DOCKER_CTX)/root/; cp docker/base-trim.sh $(DOCKER_CTX)/; \
	echo "docker build $(IMAGE_NAME):$(IMAGE_VERSION) on $$base"; \
	$(DOCKER) build -q --build-arg BASE=$$base -t $(IMAGE_NAME):$(IMAGE_VERSION) -t $(IMAGE_NAME):dev -f docker/Dockerfile $(DOCKER_CTX) >/dev/null; \
	$(DOCKER) image prune -f --filter label=org.borealisdb.image=borealis --filter until=1h >/dev/null; \
	$(DOCKER) image ls $(IMAGE_NAME):dev --format 'built {{.Repository}}:$(IMAGE_VERSION) (also :{{.Tag}}), {{.Size}}'

test-docker: image
	BOREALIS_IMAGE=$(IMAGE_NAME):dev $(GO) test -count=1 -tags docker -timeout $(DOCKER_TEST_TIMEOUT) ./testcontainers/... ./examples/...
