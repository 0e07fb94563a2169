// hello.js: `hyperlight run examples/scripts/hello.js [NAME]`
const name = scriptArgs[1] || "JavaScript";
const squares = Array.from({ length: 8 }, (_, i) => (i + 1) ** 2);
console.log(`Hello, ${name}! QuickJS in a micro-VM: ${JSON.stringify({ squares, big: String(2n ** 64n) })}`);
