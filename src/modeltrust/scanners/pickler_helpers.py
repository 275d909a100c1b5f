"""What dill's and cloudpickle's reconstructors do, modelled for the pickle
walker (neither library is imported).

dill writes ordinary data with a few helpers of its own module `dill._dill`,
which deny.yaml denies as a whole (most of dill rebuilds code). Three of them
are modelled exactly, from dill 0.3-0.4's source, so the walker judges what
they really do instead of the helper's name:

- `_load_type(name)` returns `_reverse_typemap[name]`: a fixed table of types
  by name (`'slice'` is `builtins.slice`, `'CodeType'` is `types.CodeType`).
  A call with a literal name is read as an import of that type, judged like
  any import (`'NoneType'` as `type(None)`); a computed or unknown name stays
  a finding.
- `_eval_repr(text)` evaluates `text` as Python; dill writes it only for the singletons
  `Ellipsis` and `NotImplemented` and for ranges (`'range(0, 3)'`, as `repr`
  spells them), which are read as those values. Any other text is the `eval`
  it is (critical).
- `_create_array(f, args, state, npdict=None)` runs `f(*args)`, then the
  result's `__setstate__(state)`, then `result.__dict__.update(npdict)`: read
  as the REDUCE, BUILD and BUILD the stream would otherwise spell out.

Every other dill helper (`_create_function`, `_create_code`, `_create_type`,
`_import_module`, `_create_namedtuple`, `_create_filehandle`, ...) builds code,
imports by name or touches files, and stays denied.

cloudpickle's `_builtin_type(name)` is `getattr(types, name)` (`'ClassType'`:
`type`): a call with a literal identifier is read as an import of
`types.<name>`, judged like any import (`types.SimpleNamespace` is allowed,
`types.FunctionType` is critical, anything else is unknown).
"""

from __future__ import annotations

import re

MODULE = "dill._dill"
LOAD_TYPE = (MODULE, "_load_type")
EVAL_REPR = (MODULE, "_eval_repr")
CREATE_ARRAY = (MODULE, "_create_array")
CLOUDPICKLE_BUILTIN_TYPE = ("cloudpickle.cloudpickle", "_builtin_type")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,200}")


def cloudpickle_builtin_type(name: str) -> tuple[str, str] | None:
    """Where `cloudpickle._builtin_type(name)` finds its type (None: not read)."""
    if name == "ClassType":
        return ("builtins", "type")
    if _IDENTIFIER.fullmatch(name) is None:
        return None
    return ("types", name)


# The reprs dill evaluates for data (save_singleton): each is a builtin constant.
EVAL_REPR_VALUES = {"Ellipsis": ("builtins", "Ellipsis"), "NotImplemented": ("builtins", "NotImplemented")}

# Types of singletons: the class of a value, as `type(None)` is; calling one
# returns the singleton (or fails), so they are read as `type(None)`: harmless
# as values, a dynamic call if called.
SINGLETON_TYPES = frozenset({"NoneType", "EllipsisType", "NotImplementedType"})

# repr(range(...)): two or three decimal integer literals as `repr` writes them
# (no leading zeros, which eval refuses; at most the 4300 digits int() takes).
_INT = r"(-?(?:0|[1-9][0-9]{0,4299}))"
_RANGE_REPR = re.compile(rf"range\({_INT}, {_INT}(?:, {_INT})?\)")


def range_arguments(text: str) -> tuple[int, ...] | None:
    """The arguments `range` would be called with if `text` were evaluated, when `text`
    is what `repr` writes for a range; None for any other text."""
    match = _RANGE_REPR.fullmatch(text)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


# dill._dill._reverse_typemap (dill 0.4.1, CPython 3.11): the name `_load_type`
# is called with -> where that type is defined, as pickle would name it (types
# that the `types` module names keep that name, so types.CodeType and
# types.FunctionType meet their deny rule). tests/test_dill.py checks it
# against the installed dill.
TYPES: dict[str, tuple[str, str]] = {
    "ArithmeticError": ("builtins", "ArithmeticError"),
    "AssertionError": ("builtins", "AssertionError"),
    "AsyncGeneratorType": ("types", "AsyncGeneratorType"),
    "AttrGetterType": ("operator", "attrgetter"),
    "AttributeError": ("builtins", "AttributeError"),
    "BaseException": ("builtins", "BaseException"),
    "BaseExceptionGroup": ("builtins", "BaseExceptionGroup"),
    "BlockingIOError": ("builtins", "BlockingIOError"),
    "BrokenPipeError": ("builtins", "BrokenPipeError"),
    "BufferError": ("builtins", "BufferError"),
    "BufferedRandomType": ("_io", "BufferedRandom"),
    "BufferedReaderType": ("_io", "BufferedReader"),
    "BufferedWriterType": ("_io", "BufferedWriter"),
    "BuiltinFunctionType": ("types", "BuiltinFunctionType"),
    "BuiltinMethodType": ("types", "BuiltinMethodType"),
    "BytesWarning": ("builtins", "BytesWarning"),
    "CellType": ("types", "CellType"),
    "ChildProcessError": ("builtins", "ChildProcessError"),
    "ClassMethodDescriptorType": ("types", "ClassMethodDescriptorType"),
    "CodeType": ("types", "CodeType"),
    "ConnectionAbortedError": ("builtins", "ConnectionAbortedError"),
    "ConnectionError": ("builtins", "ConnectionError"),
    "ConnectionRefusedError": ("builtins", "ConnectionRefusedError"),
    "ConnectionResetError": ("builtins", "ConnectionResetError"),
    "CoroutineType": ("types", "CoroutineType"),
    "DeprecationWarning": ("builtins", "DeprecationWarning"),
    "DictItemsType": ("builtins", "dict_items"),
    "DictKeysType": ("builtins", "dict_keys"),
    "DictValuesType": ("builtins", "dict_values"),
    "EOFError": ("builtins", "EOFError"),
    "EllipsisType": ("types", "EllipsisType"),
    "EncodingWarning": ("builtins", "EncodingWarning"),
    "EnvironmentError": ("builtins", "EnvironmentError"),
    "Exception": ("builtins", "Exception"),
    "ExceptionGroup": ("builtins", "ExceptionGroup"),
    "ExitType": ("_sitebuiltins", "Quitter"),
    "FileExistsError": ("builtins", "FileExistsError"),
    "FileNotFoundError": ("builtins", "FileNotFoundError"),
    "FileType": ("_io", "FileIO"),
    "FloatingPointError": ("builtins", "FloatingPointError"),
    "FrameType": ("types", "FrameType"),
    "FunctionType": ("types", "FunctionType"),
    "FutureWarning": ("builtins", "FutureWarning"),
    "GeneratorExit": ("builtins", "GeneratorExit"),
    "GeneratorType": ("types", "GeneratorType"),
    "GenericAliasIteratorType": ("builtins", "generic_alias_iterator"),
    "GetSetDescriptorType": ("types", "GetSetDescriptorType"),
    "IOError": ("builtins", "IOError"),
    "ImportError": ("builtins", "ImportError"),
    "ImportWarning": ("builtins", "ImportWarning"),
    "IndentationError": ("builtins", "IndentationError"),
    "IndexError": ("builtins", "IndexError"),
    "InterruptedError": ("builtins", "InterruptedError"),
    "IsADirectoryError": ("builtins", "IsADirectoryError"),
    "ItemGetterType": ("operator", "itemgetter"),
    "KeyError": ("builtins", "KeyError"),
    "KeyboardInterrupt": ("builtins", "KeyboardInterrupt"),
    "LambdaType": ("types", "LambdaType"),
    "LookupError": ("builtins", "LookupError"),
    "MappingProxyType": ("types", "MappingProxyType"),
    "MemberDescriptorType": ("types", "MemberDescriptorType"),
    "MemoryError": ("builtins", "MemoryError"),
    "MethodDescriptorType": ("types", "MethodDescriptorType"),
    "MethodType": ("types", "MethodType"),
    "MethodWrapperType": ("types", "MethodWrapperType"),
    "ModuleNotFoundError": ("builtins", "ModuleNotFoundError"),
    "ModuleType": ("types", "ModuleType"),
    "NameError": ("builtins", "NameError"),
    "NoneType": ("types", "NoneType"),
    "NotADirectoryError": ("builtins", "NotADirectoryError"),
    "NotImplementedError": ("builtins", "NotImplementedError"),
    "NotImplementedType": ("types", "NotImplementedType"),
    "OSError": ("builtins", "OSError"),
    "OdictItemsType": ("builtins", "odict_items"),
    "OdictKeysType": ("builtins", "odict_keys"),
    "OdictValuesType": ("builtins", "odict_values"),
    "OverflowError": ("builtins", "OverflowError"),
    "PartialType": ("functools", "partial"),
    "PendingDeprecationWarning": ("builtins", "PendingDeprecationWarning"),
    "PermissionError": ("builtins", "PermissionError"),
    "ProcessLookupError": ("builtins", "ProcessLookupError"),
    "PyBufferedRandomType": ("_pyio", "BufferedRandom"),
    "PyBufferedReaderType": ("_pyio", "BufferedReader"),
    "PyBufferedWriterType": ("_pyio", "BufferedWriter"),
    "PyCapsuleType": ("builtins", "PyCapsule"),
    "PyTextWrapperType": ("_pyio", "TextIOWrapper"),
    "RecursionError": ("builtins", "RecursionError"),
    "ReferenceError": ("builtins", "ReferenceError"),
    "ResourceWarning": ("builtins", "ResourceWarning"),
    "RuntimeError": ("builtins", "RuntimeError"),
    "RuntimeWarning": ("builtins", "RuntimeWarning"),
    "StopAsyncIteration": ("builtins", "StopAsyncIteration"),
    "StopIteration": ("builtins", "StopIteration"),
    "SuperType": ("builtins", "super"),
    "SyntaxError": ("builtins", "SyntaxError"),
    "SyntaxWarning": ("builtins", "SyntaxWarning"),
    "SystemError": ("builtins", "SystemError"),
    "SystemExit": ("builtins", "SystemExit"),
    "TabError": ("builtins", "TabError"),
    "TextWrapperType": ("_io", "TextIOWrapper"),
    "TimeoutError": ("builtins", "TimeoutError"),
    "TracebackType": ("types", "TracebackType"),
    "TypeError": ("builtins", "TypeError"),
    "UnboundLocalError": ("builtins", "UnboundLocalError"),
    "UnicodeDecodeError": ("builtins", "UnicodeDecodeError"),
    "UnicodeEncodeError": ("builtins", "UnicodeEncodeError"),
    "UnicodeError": ("builtins", "UnicodeError"),
    "UnicodeTranslateError": ("builtins", "UnicodeTranslateError"),
    "UnicodeWarning": ("builtins", "UnicodeWarning"),
    "UserWarning": ("builtins", "UserWarning"),
    "ValueError": ("builtins", "ValueError"),
    "Warning": ("builtins", "Warning"),
    "WrapperDescriptorType": ("types", "WrapperDescriptorType"),
    "ZeroDivisionError": ("builtins", "ZeroDivisionError"),
    "bool": ("builtins", "bool"),
    "bytearray": ("builtins", "bytearray"),
    "bytes": ("builtins", "bytes"),
    "classmethod": ("builtins", "classmethod"),
    "complex": ("builtins", "complex"),
    "dict": ("builtins", "dict"),
    "enumerate": ("builtins", "enumerate"),
    "filter": ("builtins", "filter"),
    "float": ("builtins", "float"),
    "frozenset": ("builtins", "frozenset"),
    "int": ("builtins", "int"),
    "list": ("builtins", "list"),
    "map": ("builtins", "map"),
    "memoryview": ("builtins", "memoryview"),
    "object": ("builtins", "object"),
    "property": ("builtins", "property"),
    "range": ("builtins", "range"),
    "reversed": ("builtins", "reversed"),
    "set": ("builtins", "set"),
    "slice": ("builtins", "slice"),
    "staticmethod": ("builtins", "staticmethod"),
    "str": ("builtins", "str"),
    "super": ("builtins", "super"),
    "tuple": ("builtins", "tuple"),
    "type": ("builtins", "type"),
    "zip": ("builtins", "zip"),
}
