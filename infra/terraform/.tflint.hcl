# tflint for infra/terraform (run per module and env by infra/validate/run). Only the bundled
# terraform ruleset: provider rulesets are plugins that cannot be installed offline.
config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "all"
}
