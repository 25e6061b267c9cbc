# A budget ceiling per job: every agent job declares `budget: {usd: ...}` at or under
# the ceiling, and the flow as a whole cannot spend more than the run ceiling.
package corral.budget

import rego.v1

settings := object.get(data, "corral_settings", {})

max_job_usd := object.get(settings, "max_job_usd", 2)

max_run_usd := object.get(settings, "max_run_usd", 10)

deny_missing_budget contains {"job": name, "msg": msg} if {
	some name, job in input.jobs
	job.agent
	object.get(job, ["budget", "usd"], null) == null
	msg := sprintf("agent job has no dollar budget: add `budget: {usd: %v}` (or less)", [max_job_usd])
}

deny_over_job_ceiling contains {"job": name, "msg": msg} if {
	some name, job in input.jobs
	job.budget.usd > max_job_usd
	msg := sprintf("budget $%v is over the $%v ceiling per job", [job.budget.usd, max_job_usd])
}

deny_over_run_ceiling contains {"msg": msg} if {
	spend := input.plan.max_spend_usd
	spend != null
	spend > max_run_usd
	msg := sprintf("the flow can spend up to $%v, over the $%v ceiling per run", [spend, max_run_usd])
}
