function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
if (fib(30) !== 832040) throw new Error("fib");
