#!/usr/bin/env node
"use strict";
require("./load")("codegen/plugin-main");
