"""Write ``dataset.json``: a labelled retrieval set from text nobody on this project wrote (issue 16).

    python benchmarks/hybrid_eval/make_dataset.py          # writes benchmarks/hybrid_eval/dataset.json
    python benchmarks/hybrid_eval/make_dataset.py --check  # regenerate and compare with the file

The corpus comes from the running Python's standard library (the version is recorded in the file;
another version gives other text, so the file, not this script, is the data set):

1. CPython's ``pydoc_data/topics.py``: every topic but three that merely concatenate others
   (``compound``, ``specialnames``, ``execmodel``: their text repeats the topics ``if``, ``try``,
   ``customization``, ``naming``... word for word) and any topic whose text equals an earlier
   one's, keeping the one its title names (in 3.11, ``else`` is the ``if`` topic). Metadata: ``source`` ``"pydoc_data/topics.py"``,
   ``topic``.
2. Docstrings of the standard library (``MODULES``, ``CLASSES``): each module's own docstring, and
   the docstring of every public function and class of the module (its ``__all__``, else the
   callables it defines) and every public method of the classes listed, read with
   ``inspect.cleandoc``. Docstrings under 20 characters, objects already met under another name,
   and docstrings equal to one already taken are skipped. Each docstring is prefixed
   by a header as a documentation page would show it: the qualified name and, where
   ``inspect.signature`` gives one, the signature (``shutil.copytree(src, dst, symlinks=False,
   ...)``; ``class collections.ChainMap(*maps)``; ``module re``). Metadata: ``source``
   ``"docstring"``, ``qualname``, ``object`` (function, class, method, module).

Every text is cut by the package's own splitter, ``langchain_memvid.splitting.split_documents``,
with its separators and ``chunk_size=500, chunk_overlap=0`` (the ~500-character chunks of the
project's other pydoc benchmarks; the package's ingest default is 1,000/150). A chunk's id is
``pydoc/<topic>/<n>`` or ``doc/<qualname>/<n>``, n its position in that text; ``chunk_index``
is in its metadata.

Queries, each with a ``kind`` and its relevant chunk ids:

- ``keyword``: a Python keyword, alone (``nonlocal``, ``except``). Relevant: the chunks of the
  topic ``help(keyword)`` shows (``pydoc.Helper.keywords``; ``except`` -> ``try``, ``def`` ->
  ``function``).
- ``question``: a natural-language question written by hand for a topic (``QUESTIONS``).
  Relevant: the chunks of that topic.
- ``identifier``: an exact name. For a function, class or method: its qualified name
  (``shutil.copytree``), which the header puts in the first chunk of its docstring; relevant: all
  the chunks of that docstring. For a module constant (``CONSTANTS``, ``re.IGNORECASE``): the
  constants have no docstring of their own, and their module's docstring documents them by bare
  name (``IGNORECASE``; ``os``'s writes ``os.pathsep``); relevant: the chunks of the module's
  docstring that name the constant. For a name documented in pydoc topics (``TOPIC_IDENTIFIERS``,
  ``str.removeprefix``, ``__slots__``, ``PYTHONHASHSEED``): relevant: the chunks of the given
  topics that name it by its last part (``removeprefix``: the entry ``str.removeprefix(prefix,
  /)`` and the chunks of it that go on with examples). The generator checks that the name (for
  constants the bare name) is in the text of at least one relevant chunk.
- ``paraphrase``: what a function, class or method does, written by hand without its name
  (``PARAPHRASES``; the generator checks that the name is absent). Relevant: all the chunks of
  its docstring.

Topic relevance also counts a chunk of another topic whose whole text lies verbatim inside the
topic's text (``augassign`` is a section of ``assignment``; ``in`` of ``comparisons``), since the
retriever cannot tell the copies apart. Labels are otherwise by membership: a chunk elsewhere
that happens to answer a question is not counted, so absolute figures are a lower bound; the
comparison between methods on the same labels is the point.

The file holds one chunk or query per line (plain JSON, about 1 MB).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import json
import platform
import pydoc
import re
import sys
import types
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATASET = HERE / "dataset.json"
CHUNK_SIZE = 500
CHUNK_OVERLAP = 0
TOPICS_SOURCE = "pydoc_data/topics.py"
# Topics whose text is a concatenation of other topics, word for word.
CONTAINER_TOPICS = ("compound", "specialnames", "execmodel")
MIN_DOC = 20

MODULES = (
    "os",
    "os.path",
    "shutil",
    "pathlib",
    "glob",
    "fnmatch",
    "tempfile",
    "subprocess",
    "sys",
    "json",
    "csv",
    "re",
    "string",
    "textwrap",
    "difflib",
    "itertools",
    "functools",
    "operator",
    "collections",
    "heapq",
    "bisect",
    "copy",
    "dataclasses",
    "contextlib",
    "datetime",
    "time",
    "math",
    "statistics",
    "random",
    "secrets",
    "hashlib",
    "base64",
    "zlib",
    "struct",
    "uuid",
    "urllib.parse",
    "logging",
    "errno",
)
# Classes whose public methods are documented too.
CLASSES = (
    "pathlib.PurePath",
    "pathlib.Path",
    "collections.Counter",
    "collections.deque",
    "datetime.datetime",
    "logging.Logger",
)

# (topic, question): written by hand, to be answered by the topic's text.
QUESTIONS: tuple[tuple[str, str], ...] = (
    ("nonlocal", "how do I make a variable from an enclosing function writable inside a nested function"),
    ("global", "how can a function assign to a module-level variable instead of creating a local one"),
    (
        "assert",
        "which statement checks a condition while debugging and is skipped when Python runs optimised",
    ),
    ("async", "how do I define a coroutine and loop over an asynchronous iterator"),
    ("await", "how does a coroutine suspend itself until another awaitable completes"),
    (
        "atom-identifiers",
        "why does an attribute whose name starts with two underscores get the class name glued in front of it",
    ),
    (
        "attribute-access",
        "how can a class supply a value when someone reads an attribute that does not exist",
    ),
    ("attribute-access", "how do I stop instances from getting a per-instance dictionary to save memory"),
    (
        "attribute-access",
        "which methods does a descriptor implement to control getting and setting an attribute of its owner",
    ),
    ("augassign", "does x += y change a list in place or build a new object"),
    (
        "binary",
        "what is the difference between true division and floor division, and what does the matrix multiplication operator do",
    ),
    ("bitwise", "which operators compute the and, or and exclusive or of the bits of two integers"),
    ("bltin-code-objects", "what is a compiled code object and how can it be run with exec or eval"),
    ("bltin-ellipsis-object", "what is the singleton written as three dots"),
    ("bltin-null-object", "what value does a function give back when it has no return statement"),
    (
        "booleans",
        "what does an or expression give back when its first operand is truthy, always True or False?",
    ),
    ("break", "how do I leave a loop early and skip its else clause"),
    ("callable-types", "how can instances of my class be called like functions"),
    (
        "calls",
        "how are positional and keyword arguments matched to parameters when calling with *args and **kwargs",
    ),
    ("class", "what happens when a class statement runs and how are class decorators applied"),
    (
        "comparisons",
        "can comparisons be chained like a < b < c, and what is the difference between is and ==",
    ),
    ("comparisons", "why is a NaN never equal to itself"),
    ("context-managers", "which special methods must an object define to be usable in a with statement"),
    ("continue", "how do I skip the rest of the current loop iteration and go on with the next one"),
    ("conversions", "when adding an int to a float, what type are the operands converted to"),
    (
        "customization",
        "what is the difference between the official string representation and the informal one",
    ),
    (
        "customization",
        "if I override equality, what must the hash of my objects agree with, and why are string hashes randomised",
    ),
    ("customization", "which method creates a new instance before __init__ runs"),
    (
        "debugger",
        "how do I set a breakpoint and step through my program line by line in the interactive debugger",
    ),
    ("debugger", "which debugger command keeps running until the current function returns"),
    ("del", "what does deleting a name or a slice of a list do"),
    (
        "dict",
        "how do I write a dictionary comprehension and what happens when a key appears twice in a dict literal",
    ),
    (
        "dynamic-features",
        "why are free variables in code passed to exec and eval looked up in the global namespace",
    ),
    ("exceptions", "what happens to an error that no handler catches"),
    ("exprlists", "why does a trailing comma turn an expression into a one-element tuple"),
    ("floating", "how do I write a float literal with an exponent"),
    ("for", "does reassigning the loop variable inside the body change the next iteration"),
    (
        "formatstrings",
        "how do I print a number with a comma as thousands separator and two digits after the decimal point",
    ),
    (
        "formatstrings",
        "how do I pad a value to a width and align it right or centre it inside a replacement field",
    ),
    (
        "function",
        "when are default argument values evaluated, and why is a mutable default list shared between calls",
    ),
    ("function", "how do I declare parameters that can only be passed by keyword or only by position"),
    (
        "identifiers",
        "which words are reserved and which are soft keywords that only matter in certain contexts",
    ),
    ("id-classes", "what do names with a leading underscore or surrounded by double underscores mean"),
    ("if", "how do I pick one of several branches, with a fallback when none of the conditions hold"),
    ("imaginary", "how do I write a complex number literal"),
    ("import", "how does a relative import with leading dots locate the module"),
    ("import", "what gets imported by from module import star, and how can a module limit it"),
    ("in", "how does the membership test work for substrings and for my own container classes"),
    (
        "integers",
        "how do I write hexadecimal, octal and binary integer literals and group digits with underscores",
    ),
    ("lambda", "how do I create a small anonymous function inside an expression"),
    ("lists", "how is a new list built from square brackets or a comprehension"),
    ("naming", "are names bound in a class body visible to the methods defined in it"),
    (
        "naming",
        "why do I get UnboundLocalError when a function assigns to a variable that also exists globally",
    ),
    ("numeric-types", "which method lets my object support + when it is the right-hand operand"),
    ("numeric-types", "how do I make my own integer-like type usable as a list index or in slices"),
    ("objects", "what are an object's identity, type and value, and which objects are mutable"),
    ("operator-summary", "in what order of precedence are Python's operators applied"),
    ("pass", "what statement does nothing and serves as a placeholder"),
    (
        "power",
        "why does -1 ** 2 evaluate to -1, and what happens when a negative number is raised to a fractional power",
    ),
    (
        "raise",
        "how do I chain a new exception to the one currently being handled, or hide the original context",
    ),
    ("return", "what does a return statement inside a generator do"),
    (
        "sequence-types",
        "which methods does a class need to behave like a sequence or a mapping with len and indexing",
    ),
    ("shifting", "what do the << and >> operators do to integers"),
    ("slicings", "how does indexing with a start, stop and step select a range of items"),
    (
        "specialattrs",
        "how do I find an object's class, a class's base classes and its method resolution order",
    ),
    ("strings", "what is a raw string literal and how are backslash escapes handled"),
    ("strings", "how do formatted string literals evaluate expressions inside curly braces"),
    ("string-methods", "how do I strip a known leading substring from a text"),
    (
        "string-methods",
        "how do I compare two texts ignoring case, including special letters like the German sharp s",
    ),
    ("string-methods", "how do I break a text into lines and optionally keep the line endings"),
    ("truth", "which values count as false in an if condition"),
    (
        "try",
        "when does a finally clause run, and what happens to an exception raised in a try with no matching except",
    ),
    ("try", "how do I handle several exceptions raised together as a group"),
    (
        "types",
        "what attributes does a user-defined function have for its default values, globals and closure",
    ),
    ("types", "what does calling a generator function return"),
    ("typesmapping", "how do I read a value from a dictionary with a fallback when the key is missing"),
    (
        "typesmapping",
        "does a dictionary remember the order in which keys were inserted, and how do I merge two with an operator",
    ),
    ("typesmethods", "what is the difference between a bound method and the plain function behind it"),
    ("typesmodules", "what is a module's namespace dictionary and can I assign to it"),
    ("typesseq", "which operations do all sequences support, like slicing, concatenation and counting items"),
    ("typesseq", "how do I produce an arithmetic progression of integers with a step for loops"),
    ("typesseq", "how do I sort a list in place by a key function, and is the sort stable"),
    (
        "typesseq-mutable",
        "how do I insert an item at a position in a list or remove and return the last item",
    ),
    ("unary", "what does the tilde operator do to an integer"),
    ("while", "how do I repeat a block as long as a condition holds"),
    ("with", "how do I use several context managers in one statement"),
    ("yield", "what turns a function definition into a generator"),
)

# (qualified name, paraphrase): written by hand, without the name.
PARAPHRASES: tuple[tuple[str, str], ...] = (
    ("shutil.copytree", "duplicate a whole folder with all its subfolders and files to a new place"),
    ("shutil.rmtree", "delete a directory and everything inside it, however deeply nested"),
    ("shutil.which", "find where an executable program lives by searching the PATH"),
    ("shutil.disk_usage", "how much free space is left on the drive that holds a path"),
    ("shutil.make_archive", "pack a folder into a zip file or a tarball"),
    ("shutil.get_terminal_size", "how wide is the console window, with a fallback when it cannot be queried"),
    ("os.fsync", "make sure data written through a file descriptor really reaches the disk"),
    ("os.replace", "rename a file onto an existing name, overwriting the target"),
    ("os.makedirs", "create a nested folder path including any missing parent directories"),
    ("os.walk", "visit every folder below a starting point, getting the names of its subfolders and files"),
    ("os.cpu_count", "how many processors does this machine have"),
    ("os.urandom", "read unpredictable bytes from the kernel for generating keys"),
    ("os.getenv", "read an environment variable, with a fallback value when it is not set"),
    ("os.symlink", "create a soft link that points to another file"),
    ("os.kill", "send a signal to another process given its id"),
    ("os.path.splitext", "separate a filename from its extension"),
    ("os.path.expanduser", "turn a path beginning with a tilde into one under the home folder"),
    ("os.path.commonpath", "the deepest folder shared by several paths"),
    ("os.path.getmtime", "when was a file last changed, as a timestamp"),
    ("os.path.relpath", "express a file location relative to some other directory"),
    ("os.path.realpath", "resolve symbolic links to get the canonical location of a file"),
    ("json.dumps", "turn a Python dictionary into a JSON string, optionally indented and with sorted keys"),
    ("json.load", "parse JSON from an open file object into Python data"),
    ("re.sub", "replace every occurrence of a regular expression pattern in a string"),
    ("re.escape", "make a string safe to use literally inside a regular expression"),
    ("re.fullmatch", "check that a pattern matches the entire string, not just its beginning"),
    ("re.findall", "collect every substring a regular expression matches into a list"),
    (
        "itertools.zip_longest",
        "pair up items from iterables of unequal length, padding the shorter ones with a fill value",
    ),
    ("itertools.groupby", "bundle runs of consecutive elements that share the same key"),
    ("itertools.chain", "iterate over several iterables one after another as if they were one"),
    ("itertools.combinations", "all ways to pick r items from a collection when order does not matter"),
    ("itertools.accumulate", "running totals of a sequence of numbers"),
    ("itertools.islice", "take the first n items of an iterator without building a list"),
    ("itertools.product", "every way of taking one element from each of several lists, like nested loops"),
    ("itertools.pairwise", "walk over a sequence in overlapping pairs of neighbours"),
    ("itertools.tee", "split one iterator into several independent copies"),
    ("itertools.cycle", "repeat the elements of an iterable endlessly, round and round"),
    ("itertools.takewhile", "yield items from the start of a sequence only while a condition stays true"),
    ("itertools.permutations", "all possible orderings of some elements"),
    ("itertools.compress", "filter one sequence using a parallel sequence of booleans"),
    (
        "functools.lru_cache",
        "memoize a function so repeated calls with the same arguments are served from a bounded store of recent results",
    ),
    (
        "functools.partial",
        "fix some arguments of a function in advance, giving a new callable with fewer parameters",
    ),
    ("functools.reduce", "fold a list into a single value by repeatedly applying a two-argument function"),
    (
        "functools.wraps",
        "make a decorator's inner function keep the name and docstring of the function it decorates",
    ),
    (
        "functools.total_ordering",
        "define only __eq__ and __lt__ and get the other comparison operators for free",
    ),
    (
        "functools.singledispatch",
        "choose which implementation of a function runs from the type of its first argument",
    ),
    (
        "functools.cmp_to_key",
        "sort with an old-style comparison function that returns negative, zero or positive",
    ),
    ("collections.Counter", "tally how many times each element appears in a list"),
    ("collections.deque", "a double-ended queue with fast appends and pops at both ends"),
    (
        "collections.namedtuple",
        "a lightweight record type: a tuple whose fields can be read by attribute name",
    ),
    (
        "collections.defaultdict",
        "a dictionary that creates a value automatically when a missing key is looked up",
    ),
    ("collections.ChainMap", "look up keys through a stack of several dictionaries as a single view"),
    ("collections.Counter.most_common", "the top n items with the highest tallies"),
    (
        "collections.deque.rotate",
        "shift all elements of a double-ended queue n steps to the right, wrapping around",
    ),
    (
        "pathlib.Path.read_text",
        "get a file's whole contents as a string in one call, without opening it explicitly",
    ),
    ("pathlib.PurePath.with_suffix", "change the extension of a path object"),
    ("pathlib.Path.rglob", "recursively find every file under a folder matching a wildcard"),
    ("pathlib.Path.iterdir", "list the entries of a folder as path objects"),
    ("pathlib.Path.touch", "create an empty file if it is not there yet, like the unix command"),
    (
        "subprocess.run",
        "start an external command, wait until it finishes and get its exit status and captured output",
    ),
    ("subprocess.check_output", "run a program and return what it printed, raising an error if it fails"),
    (
        "subprocess.Popen",
        "launch a child process without waiting for it, with pipes to its standard streams",
    ),
    ("datetime.timedelta", "represent a span of time such as three days and four hours to add to a date"),
    ("datetime.datetime.fromisoformat", "parse a timestamp string like 2024-05-01T12:30:00"),
    ("datetime.datetime.strptime", "turn a date string into a date and time object using a format pattern"),
    ("math.isclose", "compare two floats for approximate equality with relative and absolute tolerances"),
    ("math.gcd", "the largest integer that divides all the given numbers"),
    ("math.hypot", "length of a vector from the origin, the square root of the sum of squares"),
    ("math.comb", "binomial coefficient, n choose k"),
    ("math.isqrt", "integer square root rounded down, exact even for huge integers"),
    ("math.fsum", "add up floats without accumulating rounding error"),
    ("math.prod", "multiply all the numbers in a list together"),
    ("math.log1p", "logarithm of one plus a tiny x, accurate near zero"),
    ("math.copysign", "give a number the sign of another number"),
    ("math.dist", "straight-line distance between two points"),
    ("statistics.median", "the middle value of a sorted data set"),
    ("statistics.stdev", "measure how much a sample of numbers spreads around its mean"),
    ("statistics.quantiles", "cut points that divide data into quartiles or percentiles"),
    ("statistics.correlation", "how strongly two lists of numbers rise and fall together"),
    (
        "statistics.linear_regression",
        "fit a straight line through points: slope and intercept by least squares",
    ),
    ("random.shuffle", "randomly reorder the items of a list in place"),
    ("random.sample", "pick k distinct elements at random without replacement"),
    ("random.choices", "draw items at random with replacement, with optional weights"),
    ("random.seed", "make random numbers reproducible by initialising the generator"),
    ("random.gauss", "a random number from a normal distribution with given mean and standard deviation"),
    ("string.capwords", "capitalize the first letter of every word in a sentence"),
    ("textwrap.dedent", "remove the common indentation from every line of a block of text"),
    ("textwrap.fill", "reflow a paragraph into one string whose lines are at most a given width"),
    ("textwrap.shorten", "truncate text to fit a width, ending with a placeholder like [...]"),
    ("textwrap.indent", "put a prefix at the start of each line of a text"),
    ("hashlib.pbkdf2_hmac", "derive a key from a password by many rounds of a keyed hash"),
    ("hashlib.file_digest", "compute the hash of an open binary file efficiently"),
    ("base64.b64encode", "turn binary data into printable ASCII using a 64-character alphabet"),
    (
        "base64.urlsafe_b64encode",
        "encode bytes for use in URLs and file names, with - and _ instead of + and /",
    ),
    ("csv.writer", "write rows of values to a comma-separated file"),
    ("csv.Sniffer", "guess the delimiter and quoting of a spreadsheet text file"),
    ("logging.basicConfig", "set up the root logger with a handler, level and message format in one call"),
    ("logging.getLogger", "obtain a named logger, creating it the first time"),
    ("logging.captureWarnings", "send warnings from the warnings module to the logging system"),
    ("sys.exit", "stop the program with a status code"),
    ("sys.getsizeof", "how many bytes of memory an object occupies"),
    ("sys.setrecursionlimit", "allow deeper recursion by raising the maximum stack depth"),
    ("sys.getrefcount", "how many references point to an object"),
    ("sys.intern", "store a string once in a global table so equal strings share one object"),
    ("tempfile.mkdtemp", "create a fresh uniquely named scratch directory that I must remove myself"),
    ("tempfile.NamedTemporaryFile", "a scratch file with a visible name on disk that disappears when closed"),
    (
        "tempfile.TemporaryDirectory",
        "a scratch folder that is removed automatically at the end of a with block",
    ),
    (
        "tempfile.SpooledTemporaryFile",
        "a scratch file kept in memory until it grows past a size, then written to disk",
    ),
    ("glob.glob", "list file names matching a wildcard pattern like *.txt"),
    ("fnmatch.fnmatch", "test whether a file name matches a shell wildcard pattern"),
    ("heapq.nlargest", "the n biggest items of a collection without sorting all of it"),
    ("heapq.heappush", "add an item to a priority queue stored in a plain list"),
    ("heapq.merge", "combine several already sorted inputs into one sorted stream lazily"),
    ("bisect.insort", "insert a value into a sorted list so that it stays sorted"),
    ("bisect.bisect_left", "binary search for the position where a value would go in a sorted list"),
    ("time.monotonic", "a clock that never goes backwards, for measuring elapsed time"),
    ("time.perf_counter", "the highest-resolution timer for benchmarking short pieces of code"),
    ("time.sleep", "pause the program for a number of seconds"),
    ("time.strftime", "format a time as text using percent codes such as %Y-%m-%d"),
    ("time.process_time", "CPU time used by this process, not counting time spent sleeping"),
    (
        "struct.pack",
        "convert numbers to raw bytes in a given binary layout such as little-endian 32-bit integers",
    ),
    ("struct.calcsize", "how many bytes a binary record layout takes"),
    ("zlib.crc32", "cyclic redundancy check of some bytes"),
    ("zlib.compress", "deflate bytes to make them smaller"),
    ("urllib.parse.quote", "percent-encode special characters so a string can go into a URL path"),
    ("urllib.parse.urlencode", "build a query string like a=1&b=2 from a dictionary"),
    ("urllib.parse.urljoin", "resolve a relative link against the address of the page it appears on"),
    ("urllib.parse.urlsplit", "break a web address into scheme, host, path, query and fragment"),
    ("urllib.parse.parse_qs", "turn the part of a URL after the question mark into a dictionary of lists"),
    ("contextlib.suppress", "ignore certain exceptions raised inside a with block"),
    (
        "contextlib.contextmanager",
        "write a with-statement helper as a generator function with a single yield",
    ),
    ("contextlib.ExitStack", "enter a variable number of context managers and close them all reliably"),
    ("contextlib.redirect_stdout", "temporarily send print output to another file object"),
    ("contextlib.chdir", "temporarily change the working directory inside a with block"),
    ("uuid.uuid4", "generate a random unique identifier"),
    ("uuid.uuid5", "a stable unique identifier derived by hashing a name within a namespace"),
    ("secrets.token_hex", "a random hexadecimal string suitable for passwords or reset links"),
    ("secrets.compare_digest", "compare two secret strings in constant time to avoid timing attacks"),
    ("secrets.token_urlsafe", "a random token that can be put into a URL"),
    ("copy.deepcopy", "clone an object and everything it refers to, recursively"),
    ("difflib.get_close_matches", "suggest the most similar words from a list, like a spelling corrector"),
    ("difflib.unified_diff", "show the changes between two lists of lines in the format patch uses"),
    (
        "operator.itemgetter",
        "a callable that fetches a given index or key from its argument, handy as a sort key",
    ),
    ("operator.attrgetter", "a callable that reads a named attribute from objects, for sorting by a field"),
    ("dataclasses.asdict", "convert a dataclass instance into a plain dictionary, recursively"),
    ("dataclasses.replace", "copy a frozen record with a few fields changed"),
    (
        "dataclasses.field",
        "give a class attribute a default factory or leave it out of the generated repr",
    ),
)

# Module constants documented by their module's docstring.
CONSTANTS = (
    "re.IGNORECASE",
    "re.MULTILINE",
    "re.DOTALL",
    "re.VERBOSE",
    "re.ASCII",
    "string.ascii_letters",
    "string.punctuation",
    "string.hexdigits",
    "string.whitespace",
    "csv.QUOTE_NONNUMERIC",
    "csv.QUOTE_MINIMAL",
    "sys.maxsize",
    "sys.float_info",
    "sys.hexversion",
    "sys.builtin_module_names",
    "sys.maxunicode",
    "os.pathsep",
    "os.linesep",
    "os.devnull",
    "os.altsep",
    "subprocess.DEVNULL",
    "subprocess.STDOUT",
    "hashlib.algorithms_guaranteed",
    "tempfile.TMP_MAX",
    "uuid.NAMESPACE_DNS",
    "errno.ENOENT",
)

# (name, topics): names documented in pydoc topics; relevant: those topics' chunks that hold it.
TOPIC_IDENTIFIERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("PYTHONHASHSEED", ("customization",)),
    ("str.removeprefix", ("string-methods",)),
    ("str.casefold", ("string-methods",)),
    ("str.maketrans", ("string-methods",)),
    ("str.expandtabs", ("string-methods",)),
    ("str.partition", ("string-methods",)),
    ("str.zfill", ("string-methods",)),
    ("str.splitlines", ("string-methods",)),
    ("str.isidentifier", ("string-methods",)),
    ("str.format_map", ("string-methods",)),
    ("__debug__", ("assert",)),
    ("__length_hint__", ("sequence-types",)),
    ("__reversed__", ("sequence-types",)),
    ("__missing__", ("typesmapping",)),
    ("__class_getitem__", ("sequence-types", "subscriptions")),
    ("__aenter__", ("async",)),
    ("__aiter__", ("async",)),
    ("__cause__", ("raise",)),
    ("__suppress_context__", ("raise",)),
    ("__qualname__", ("types",)),
    ("__kwdefaults__", ("types",)),
    ("__closure__", ("types",)),
    ("__mro__", ("specialattrs",)),
    ("__round__", ("numeric-types",)),
    ("__slots__", ("attribute-access",)),
    ("__delete__", ("attribute-access",)),
    ("__enter__", ("with",)),
    ("__all__", ("import",)),
    ("__builtins__", ("naming",)),
    ("pdb.set_trace", ("debugger",)),
)


@dataclass
class Entry:
    """One text before splitting: a topic or a docstring with its header."""

    key: str  # topic name or qualified name
    text: str
    metadata: dict[str, Any]


# ------------------------------------------------------------------------------------- corpus


def topic_entries() -> tuple[list[Entry], dict[str, str]]:
    """The topics kept, in sorted order, and every topic's text (dropped ones too)."""
    import pydoc_data.topics

    texts: dict[str, str] = dict(pydoc_data.topics.topics)
    names_of: dict[str, list[str]] = {}
    for name in sorted(texts):
        if name not in CONTAINER_TOPICS:
            names_of.setdefault(texts[name], []).append(name)
    kept: list[Entry] = []
    for text, names in names_of.items():
        # Of topics sharing one text, the one its title names: 'The "if" statement' is "if", not "else".
        title = text.split("\n", 1)[0]
        name = next((n for n in names if f'"{n}"' in title), names[0])
        kept.append(Entry(name, text, {"source": TOPICS_SOURCE, "topic": name}))
    return sorted(kept, key=lambda e: e.key), texts


def resolve(qualname: str) -> Any:
    """The object a dotted name points to, importing the longest module prefix."""
    parts = qualname.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(qualname)


def signature(obj: Any, *, method: bool = False) -> str:
    """``(a, b=1)`` as ``inspect.signature`` gives it, or "" when it gives none."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    params = list(sig.parameters.values())
    if method and params and params[0].name in ("self", "cls"):
        sig = sig.replace(parameters=params[1:])
    # Sentinel defaults print their address, which changes from run to run.
    return re.sub(r" at 0x[0-9a-fA-F]+", "", str(sig))


def own_doc(obj: Any) -> str:
    doc = getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def public_names(mod: types.ModuleType) -> list[str]:
    """The module's ``__all__``, else the public callables it defines (or its C accelerator does)."""
    names = getattr(mod, "__all__", None)
    if names is None:
        own = (mod.__name__, f"_{mod.__name__}")  # bisect's functions come from _bisect
        names = [n for n in dir(mod) if getattr(getattr(mod, n), "__module__", None) in own]
    return sorted({n for n in names if not n.startswith("_")})


def docstring_entries() -> list[Entry]:
    entries: list[Entry] = []
    seen_objects: set[int] = set()
    seen_docs: set[str] = set()

    def take(qualname: str, obj: Any, kind: str, header: str) -> None:
        doc = own_doc(obj)
        if len(doc) < MIN_DOC or id(obj) in seen_objects or doc in seen_docs:
            return
        seen_objects.add(id(obj))
        seen_docs.add(doc)
        meta = {"source": "docstring", "qualname": qualname, "object": kind}
        entries.append(Entry(qualname, f"{header}\n\n{doc}", meta))

    for modname in MODULES:
        mod = importlib.import_module(modname)
        take(modname, mod, "module", f"module {modname}")
        for name in public_names(mod):
            obj = getattr(mod, name, None)
            if obj is None or isinstance(obj, types.ModuleType) or not callable(obj):
                continue  # constants have no docstring of their own
            qualname = f"{modname}.{name}"
            if inspect.isclass(obj):
                take(qualname, obj, "class", f"class {qualname}{signature(obj)}")
            else:
                take(qualname, obj, "function", f"{qualname}{signature(obj)}")
    for clsname in CLASSES:
        cls = resolve(clsname)
        for name in sorted(vars(cls)):
            if name.startswith("_"):
                continue
            obj = getattr(cls, name)
            if not callable(obj):
                continue
            qualname = f"{clsname}.{name}"
            take(qualname, obj, "method", f"{qualname}{signature(obj, method=True)}")
    return entries


def split(entries: list[Entry], prefix: str) -> list[dict[str, Any]]:
    from langchain_core.documents import Document

    from langchain_memvid.splitting import split_documents

    chunks = []
    for entry in entries:
        docs = split_documents(
            [Document(entry.text, metadata=entry.metadata)],
            chunk_size=CHUNK_SIZE,
            chunk_overlap=CHUNK_OVERLAP,
        )
        for doc in docs:
            meta = {k: v for k, v in doc.metadata.items() if k != "start_index"}
            chunks.append(
                {
                    "id": f"{prefix}/{entry.key}/{meta['chunk_index']}",
                    "text": doc.page_content,
                    "metadata": meta,
                }
            )
    return chunks


# ------------------------------------------------------------------------------------ queries


def _flat(text: str) -> str:
    return " ".join(text.split())


def _names(name: str) -> re.Pattern[str]:
    """The name as a whole token: not inside a longer identifier (``partition`` in ``rpartition``)."""
    return re.compile(r"(?<!\w)" + re.escape(name) + r"(?!\w)")


def keywords() -> list[tuple[str, str]]:
    """(keyword, topic) as ``help(keyword)`` resolves it; keywords without a topic are left out."""
    out = []
    for word, entry in sorted(pydoc.Helper.keywords.items()):
        target: Any = entry
        while isinstance(target, str) and target:  # "except" -> "try"; "and" -> "BOOLEAN" -> ...
            target = pydoc.Helper.keywords.get(target) or pydoc.Helper.topics.get(target, "")
        if isinstance(target, tuple):
            out.append((word, target[0]))
    return out


def build() -> dict[str, Any]:
    topics, all_topic_texts = topic_entries()
    docs = docstring_entries()
    chunks, texts, dropped = [], [], 0
    seen_texts: set[str] = set()
    for c in split(topics, "pydoc") + split(docs, "doc"):
        if c["text"] in seen_texts:  # a copy of an earlier chunk (augassign's text is in assignment's)
            dropped += 1
            continue
        seen_texts.add(c["text"])
        chunks.append(c)
        texts.append(c["text"])
    by_topic: dict[str, list[dict[str, Any]]] = {}
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for c in chunks:
        meta = c["metadata"]
        if "topic" in meta:
            by_topic.setdefault(meta["topic"], []).append(c)
        else:
            by_doc.setdefault(meta["qualname"], []).append(c)
    topic_chunks = [c for c in chunks if "topic" in c["metadata"]]
    flat_topic_chunks = [(c, _flat(c["text"])) for c in topic_chunks]

    def topic_relevant(topic: str) -> list[str]:
        if topic not in all_topic_texts:
            raise SystemExit(f"no pydoc topic {topic!r}")
        whole = _flat(all_topic_texts[topic])
        return [c["id"] for c, flat in flat_topic_chunks if c["metadata"]["topic"] == topic or flat in whole]

    queries: list[dict[str, Any]] = []

    def add(kind: str, query: str, target: str, relevant: list[str]) -> None:
        if not relevant:
            raise SystemExit(f"{kind} query {query!r} ({target}) has no relevant chunk")
        queries.append({"kind": kind, "query": query, "target": target, "relevant": relevant})

    for word, topic in keywords():
        add("keyword", word, f"topic:{topic}", topic_relevant(topic))
    for topic, question in QUESTIONS:
        add("question", question, f"topic:{topic}", topic_relevant(topic))

    def doc_chunks(qualname: str) -> list[dict[str, Any]]:
        if qualname not in by_doc:
            raise SystemExit(f"{qualname} has no docstring in the corpus (skipped, or not listed in MODULES)")
        return by_doc[qualname]

    for qualname, _ in PARAPHRASES:
        found = doc_chunks(qualname)
        if qualname not in found[0]["text"]:
            raise SystemExit(f"{qualname} is not in the text of its first chunk")
        add("identifier", qualname, f"doc:{qualname}", [c["id"] for c in found])
    for qualname in CONSTANTS:
        module, _, name = qualname.rpartition(".")
        pattern = _names(name)
        relevant = [c["id"] for c in doc_chunks(module) if pattern.search(c["text"])]
        add("identifier", qualname, f"doc:{module}", relevant)
    for name, where in TOPIC_IDENTIFIERS:
        # The chunks that name it, by its last part: "str.splitlines(keepends=False)" begins the
        # entry, and the chunks after it go on with "splitlines()" examples.
        pattern = _names(name.rpartition(".")[2])
        found = [c for t in where for c in by_topic[t] if pattern.search(c["text"])]
        if not any(name in c["text"] for c in found):
            raise SystemExit(f"{name} is not in the text of any chunk of {where}")
        add("identifier", name, "topic:" + "+".join(where), [c["id"] for c in found])
    for qualname, paraphrase in PARAPHRASES:
        short = qualname.rsplit(".", 1)[-1]
        if re.search(rf"\b{re.escape(short)}\b", paraphrase, re.IGNORECASE):
            raise SystemExit(f"the paraphrase of {qualname} names it: {paraphrase!r}")
        add("paraphrase", paraphrase, f"doc:{qualname}", [c["id"] for c in doc_chunks(qualname)])
    seen: set[tuple[str, str]] = set()
    for q in queries:
        if (q["kind"], q["query"]) in seen:
            raise SystemExit(f"{q['kind']} query {q['query']!r} appears twice")
        seen.add((q["kind"], q["query"]))
    for i, q in enumerate(queries):
        q["id"] = f"q{i:04d}"

    source_counts = Counter(c["metadata"]["source"] for c in chunks)
    kind_counts = Counter(q["kind"] for q in queries)
    return {
        "name": "hybrid-eval",
        "about": (
            "Labelled retrieval set for lexical, vector and hybrid search (issue 16): chunks of CPython's "
            "pydoc topics and standard-library docstrings, with keyword, question, identifier and "
            "paraphrase queries and their relevant chunk ids. See make_dataset.py for how it is made."
        ),
        "generator": "benchmarks/hybrid_eval/make_dataset.py",
        "python": platform.python_version(),
        "python_implementation": sys.implementation.name,
        "chunking": {
            "splitter": "langchain_memvid.splitting.split_documents",
            "chunk_size": CHUNK_SIZE,
            "chunk_overlap": CHUNK_OVERLAP,
        },
        "dropped_topics": sorted(set(all_topic_texts) - {e.key for e in topics}),
        "docstring_modules": list(MODULES),
        "docstring_classes": list(CLASSES),
        "counts": {
            "chunks": len(chunks),
            "duplicate_chunks_dropped": dropped,
            "chunks_by_source": dict(sorted(source_counts.items())),
            "topics": len(topics),
            "docstrings": len(docs),
            "text_chars": sum(len(t) for t in texts),
            "queries": len(queries),
            "queries_by_kind": {
                k: kind_counts[k] for k in ("keyword", "question", "identifier", "paraphrase")
            },
        },
        "chunks": chunks,
        "queries": queries,
    }


def dumps(data: dict[str, Any]) -> str:
    """Plain JSON with one chunk or query per line, so that a change shows as a few lines."""
    head = {k: v for k, v in data.items() if k not in ("chunks", "queries")}
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    for key in ("chunks", "queries"):
        rows = [json.dumps(row, ensure_ascii=False) for row in data[key]]
        lines.append(f'"{key}": [')
        lines.append(",\n".join(rows))
        lines.append("]," if key == "chunks" else "]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def iter_summary(data: dict[str, Any]) -> Iterator[str]:
    counts = data["counts"]
    yield f"Python {data['python']}: {counts['chunks']:,} chunks ({counts['text_chars']:,} characters)"
    yield f"  by source: {counts['chunks_by_source']}; {counts['topics']} topics, {counts['docstrings']} docstrings"
    yield f"  queries: {counts['queries']} {counts['queries_by_kind']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATASET)
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args(argv)
    data = build()
    text = dumps(data)
    json.loads(text)  # the writer's own output must parse
    for line in iter_summary(data):
        print(line)
    digest = hashlib.sha256(text.encode()).hexdigest()
    if args.check:
        old = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        same = old == text
        print(f"{args.out}: {'the same' if same else 'DIFFERENT'} (generated sha256 {digest[:16]})")
        return 0 if same else 1
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode()):,} bytes, sha256 {digest[:16]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
