"""The Kubernetes source: RBAC, pods, namespaces and network policies of every configured cluster."""
