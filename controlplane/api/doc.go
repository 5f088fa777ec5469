// Package api is the control plane's HTTP JSON API, served on a loopback address and guarded
// by a bearer token that is created at first start in a file only its owner can read (0600).
//
//	GET    /v1/clusters             list clusters          {"DBClusters": [...]}
//	POST   /v1/clusters             create (CreateInput)   201 {"DBCluster": {...}}
//	GET    /v1/clusters/{name}      describe               {"DBCluster": {...}}
//	PATCH  /v1/clusters/{name}      modify (ModifyInput)   {"DBCluster": {...}}
//	DELETE /v1/clusters/{name}      delete                 {"DBCluster": {...}}
//	GET    /v1/events?cluster=&limit=                      {"Events": [...]}
//	GET    /v1/engine-default-cluster-parameters?family=   {"EngineDefaults": {...}}
//	GET    /v1/parameter-groups                            {"DBClusterParameterGroups": [...]}
//	POST   /v1/parameter-groups     create                 201 {"DBClusterParameterGroup": {...}}
//	GET    /v1/parameter-groups/{g}?source=                {"DBClusterParameterGroup", "Parameters"}
//	PATCH  /v1/parameter-groups/{g} {"Parameters": [{"ParameterName", "ParameterValue"}]}
//	POST   /v1/parameter-groups/{g}/reset {"ResetAllParameters"} or {"Parameters": [...]}
//	DELETE /v1/parameter-groups/{g} delete (refused while a cluster uses it)
//	GET    /v1/log-groups?logGroupNamePrefix=             {"logGroups": [...]}
//	DELETE /v1/log-groups?logGroupName=                   delete a group and its events
//	PUT    /v1/log-groups/retention {"logGroupName", "retentionInDays"}
//	GET    /v1/log-events?logGroupName=&startTime=&endTime=&filterPattern=&limit=&nextToken=
//	                                                      {"events": [...], "nextToken"}
//	GET    /metrics                 Prometheus (no token: it holds no secrets, and is loopback only)
//	GET    /healthz                 liveness (no token)
//
// Failures are JSON {"Error": {"Code", "Message", "Field"}} with 400 for a bad request (the
// field named), 401 without a valid token, 404 for an unknown cluster, 409 for a duplicate.
// The package owns HTTP only: it validates and translates, and the cluster Manager acts.
package api
