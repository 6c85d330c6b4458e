.PHONY: build test deb bench

build:
	go build -o oneport ./cmd/oneport

test:
	go test ./...

deb:
	packaging/build-deb.sh

bench:
	go run ./cmd/oneport-bench
