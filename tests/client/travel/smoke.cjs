// The CommonJS entry: require() of the package must work (no top-level await inside).
const { Rill, RillError } = require("../../../mod.ts");
const rill = new Rill({ brokers: [process.argv[2]] });
rill.admin().listTopics().then((topics) => {
  console.log(JSON.stringify({ listed: Array.isArray(topics), error: typeof RillError }));
});
