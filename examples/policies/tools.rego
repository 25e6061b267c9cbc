# Allowed tools and models: agent CLIs from a list, and every agent job names a model
# that matches one of the allowed patterns (no silent default model).
package corral.tools

import rego.v1

settings := object.get(data, "corral_settings", {})

allowed_tools := {t | some t in object.get(settings, "allowed_tools", ["generic"])}

allowed_models := object.get(settings, "allowed_models", [])

deny_tool contains {"job": name, "msg": msg} if {
	some name, job in input.jobs
	not job.tool in allowed_tools
	msg := sprintf("tool %q is not allowed (allowed: %s)", [job.tool, concat(", ", sort(allowed_tools))])
}

deny_missing_model contains {"job": name, "msg": msg} if {
	some name, job in input.jobs
	job.agent
	job.model == null
	msg := "agent job names no model: set `model:` to an allowed one"
}

deny_model contains {"job": name, "msg": msg} if {
	some name, job in input.jobs
	job.agent
	job.model != null
	not model_allowed(job.model)
	msg := sprintf("model %q is not allowed (allowed: %s)", [job.model, concat(", ", allowed_models)])
}

model_allowed(model) if {
	some pattern in allowed_models
	glob.match(pattern, [], model)
}
