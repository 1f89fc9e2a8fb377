/** The greeter example's config schema, as an application declares it. */
import { defineConfig } from "../../config";
import { GreeterConfig } from "../../gen/examples/greeter/v1/greeter_config";
import { GreeterConfigServiceDefinition } from "../../gen/examples/greeter/v1/greeter_config_protomesh";

export const GreeterConfigDefinition = defineConfig(GreeterConfig, "examples.greeter.v1.GreeterConfig", GreeterConfigServiceDefinition);
