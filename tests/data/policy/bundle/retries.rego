package corral.retries

import rego.v1

deny_retries contains {"job": name, "msg": msg, "severity": "high"} if {
	some name, job in input.jobs
	job.retries > data.org.limits.max_retries
	msg := sprintf("retries %d over %d", [job.retries, data.org.limits.max_retries])
}
