"""Static validation of the deployment files: docker-compose.yml, docker/ and k8s/.

Nothing here needs or contacts a Docker engine or a Kubernetes cluster.
`python -m harness.deploy_check` runs every check and prints one line each
(see cli.CHECKS); docs/DEPLOYMENT.md lists what each one covers.

- `compose`: docker-compose.yml's cross-references (depends_on, volumes, Kafka
  and Cassandra addresses, the stream job's module);
- `dockerfiles`: COPY sources against the build context and its .dockerignore,
  the version pins that must agree (Flink, PyFlink, Python, connectors, the
  Prometheus reporter), and what the Flink image holds for the job;
- `haproxy`: the front door's one config, docker/haproxy.cfg, against the
  Compose services and as HAProxy itself reads it with each environment;
- `k8s_render`, `k8s_schema`, `k8s_refs`, `flink_deployment`: the kustomization
  rendered, against the Kubernetes OpenAPI schemas, and cross-checked;
- `tools`: the pinned external tools, installed into .cache/validate-deploy/.

This package must stay importable without third-party packages except PyYAML:
k8s_schema runs in the tools' own virtualenv.
"""
