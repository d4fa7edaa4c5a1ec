"""collector.config.loader: YAML to the typed model, with FILE:LINE:COL messages."""

from __future__ import annotations

import textwrap
from typing import Literal

import pytest

from collector.config.loader import ConfigError, load_config, load_config_text, load_default_config
from collector.config.model import Config
from collector.config.units import ByteSize, Duration
from collector.destinations.base import DestinationConfig


# Stand-ins for the real destination configs, so that these tests depend only on the contract.
class FakeFileConfig(DestinationConfig, tag="file", kw_only=True):
    path: str
    mode: Literal["append", "truncate"] = "append"


class FakeWebhookConfig(DestinationConfig, tag="webhook", kw_only=True):
    url: str
    headers: dict[str, str] = {}


FAKE_UNION = FakeFileConfig | FakeWebhookConfig


def load(text: str) -> Config:
    return load_config_text(textwrap.dedent(text), "collector.yaml", destination_union=FAKE_UNION)


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return caught.value.errors


# --- Reading and parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "~\n"])
def test_an_empty_file_gives_every_default(text):
    assert load(text) == Config(origin="collector.yaml")


def test_empty_sections_keep_their_defaults():
    config = load("server:\nstorage:\nsources:\ndestinations:\n")
    assert config == Config(origin="collector.yaml")


def test_a_complete_file_is_typed():
    config = load("""\
        server:
          listen: 0.0.0.0:9000
          public_url: https://data.example.com
          trusted_proxies: [10.0.0.0/8, 192.168.1.7, "::1"]
          limits: {max_event_bytes: 64KB, max_batch_events: 100}
          shutdown_timeout: 500ms
        storage: {path: /var/lib/collector, sync: normal, retention: 4h, max_bytes: 1GiB}
        logging: {level: debug, format: text}
        sources:
          web: {write_key: wk_web}
          ios: {write_key: wk_ios, enabled: false}
        destinations:
          archive:
            type: file
            path: /srv/archive
            sources: [web]
            batch: {max_events: 10, max_wait: 2s}
          hook:
            type: webhook
            url: https://hooks.example.com/in
            headers: {X-Token: abc}
        """)
    assert config.origin == "collector.yaml"
    assert config.server.listen == "0.0.0.0:9000"
    assert config.server.trusted_proxies == ["10.0.0.0/8", "192.168.1.7", "::1"]
    assert config.server.limits.max_event_bytes == 64_000
    assert config.server.shutdown_timeout == 0.5
    assert config.storage.max_bytes == 1024**3
    assert config.storage.retention == 4 * 3600
    assert config.logging.level == "debug"
    assert config.sources["ios"].enabled is False
    archive = config.destinations["archive"]
    assert (type(archive), archive.path, archive.sources) == (FakeFileConfig, "/srv/archive", ["web"])
    assert config.destinations["archive"].batch.max_events == 10
    assert config.destinations["archive"].batch.max_wait == 2.0
    assert config.destinations["hook"] == FakeWebhookConfig(
        url="https://hooks.example.com/in", headers={"X-Token": "abc"}
    )


def test_load_config_reads_a_file_and_sets_origin(tmp_path):
    path = tmp_path / "collector.yaml"
    path.write_text("sources:\n  web: {write_key: abc}\n")
    config = load_config(path)
    assert config.origin == str(path)
    assert config.sources["web"].write_key == "abc"


def test_load_config_messages_name_the_file(tmp_path):
    path = tmp_path / "collector.yaml"
    path.write_text("logging:\n  level: loud\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.errors == [
        f"{path}:2:10: logging.level: invalid value 'loud'; expected one of: debug, error, info, warning"
    ]


def test_a_missing_file_cannot_be_read(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.errors == [f"{path}: cannot read: No such file or directory"]


def test_a_file_that_is_not_utf8_cannot_be_read(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"sources:\n  caf\xe9: {write_key: x}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [message] = caught.value.errors
    assert message.startswith(f"{path}: cannot read: 'utf-8' codec can't decode byte 0xe9")


def test_a_yaml_syntax_error_gives_its_position():
    assert errors("server:\n  listen: a: b\n") == [
        "collector.yaml:2:12: YAML syntax error: mapping values are not allowed here"
    ]


def test_an_unclosed_flow_sequence_is_a_syntax_error():
    assert errors("server:\n  trusted_proxies: [10.0.0.1,\n") == [
        "collector.yaml:3:1: YAML syntax error: while parsing a flow node, "
        "expected the node content, but found '<stream end>'"
    ]


def test_two_documents_are_a_syntax_error():
    assert errors("server: {}\n---\nstorage: {}\n") == [
        "collector.yaml:2:1: YAML syntax error: expected a single document in the stream, "
        "but found another document"
    ]


@pytest.mark.parametrize("text, got", [("- a\n- b\n", "a list"), ("hello\n", "a single value")])
def test_the_top_level_must_be_a_mapping(text, got):
    assert errors(text) == [f"collector.yaml:1:1: the configuration must be a mapping of sections, got {got}"]


def test_config_error_str_joins_every_error():
    error = ConfigError(["a.yaml:1:1: x: one", "a.yaml:2:1: y: two"])
    assert str(error) == "a.yaml:1:1: x: one\na.yaml:2:1: y: two"
    assert error.errors == ["a.yaml:1:1: x: one", "a.yaml:2:1: y: two"]


# --- Duplicate and unknown keys ----------------------------------------------------------------------


def test_a_duplicate_top_level_key_points_at_the_second_and_names_the_first():
    assert errors("""\
        server:
          listen: 127.0.0.1:1
        storage: {}
        server:
          listen: 127.0.0.1:2
        """) == ["collector.yaml:4:1: server: duplicate key, first defined on line 1"]


def test_duplicate_keys_deep_down_and_in_flow_mappings():
    assert errors("""\
        sources:
          web: {write_key: a, write_key: b}
        destinations:
          archive:
            type: file
            path: /a
            batch:
              max_events: 1
              max_events: 2
        """) == [
        "collector.yaml:2:23: sources.web.write_key: duplicate key, first defined on line 2",
        "collector.yaml:9:7: destinations.archive.batch.max_events: duplicate key, first defined on line 8",
    ]


def test_a_duplicate_source_name():
    assert errors("""\
        sources:
          web: {write_key: a}
          app: {write_key: b}
          web: {write_key: c}
        """) == ["collector.yaml:4:3: sources.web: duplicate key, first defined on line 2"]


def test_an_unknown_top_level_key():
    assert errors("server: {}\nsource:\n  web: {write_key: a}\n") == [
        "collector.yaml:2:1: source: unknown field source; "
        "expected one of: server, storage, logging, browser, tracking_plans, sources, destinations"
    ]


def test_origin_is_not_a_key_of_the_file():
    assert errors("origin: elsewhere\n") == [
        "collector.yaml:1:1: origin: unknown field origin; "
        "expected one of: server, storage, logging, browser, tracking_plans, sources, destinations"
    ]


def test_unknown_keys_at_every_depth_point_at_the_key():
    assert errors("""\
        server:
          listn: 127.0.0.1:8088
          limits:
            max_event_byte: 1KB
        sources:
          web:
            write_key: a
            enable: false
        destinations:
          archive:
            type: file
            path: /a
            batch:
              max_event: 3
              colour: blue
        """) == [
        "collector.yaml:2:3: server.listn: unknown field listn; did you mean listen?",
        "collector.yaml:4:5: server.limits.max_event_byte: unknown field max_event_byte; "
        "did you mean max_event_bytes?",
        "collector.yaml:8:5: sources.web.enable: unknown field enable; did you mean enabled?",
        "collector.yaml:14:7: destinations.archive.batch.max_event: unknown field max_event; "
        "did you mean max_events?",
        "collector.yaml:15:7: destinations.archive.batch.colour: unknown field colour",
    ]


# --- Type errors -----------------------------------------------------------------------------------


def test_a_constraint_error_points_at_the_value():
    assert errors("""\
        destinations:
          warehouse:
            type: file
            path: /w
            batch:
              max_events: 0
        """) == ["collector.yaml:6:19: destinations.warehouse.batch.max_events: expected int >= 1, got 0"]


def test_a_wrong_type_shows_the_value():
    assert errors("server:\n  listen: 8088\nsources:\n  web: {write_key: a, enabled: maybe}\n") == [
        "collector.yaml:2:11: server.listen: expected str, got 8088",
        "collector.yaml:4:32: sources.web.enabled: expected bool, got 'maybe'",
    ]


def test_a_section_of_the_wrong_kind():
    assert errors("server: 8088\nlogging: [debug]\n") == [
        "collector.yaml:1:9: server: expected mapping, got 8088",
        "collector.yaml:2:10: logging: expected mapping, got ['debug']",
    ]


def test_a_literal_lists_its_choices():
    assert errors("storage:\n  sync: fast\n") == [
        "collector.yaml:2:9: storage.sync: invalid value 'fast'; expected one of: full, normal"
    ]
    assert errors("destinations:\n  a: {type: file, path: /a, mode: rewrite}\n") == [
        "collector.yaml:2:35: destinations.a.mode: invalid value 'rewrite'; expected one of: append, truncate"
    ]


def test_a_list_item_error_names_its_index():
    assert errors("""\
        destinations:
          a:
            type: file
            path: /a
            consent_categories:
              - analytics
              - [nested]
        """) == [
        "collector.yaml:7:9: destinations.a.consent_categories[1]: expected str, got ['nested']"
    ]


def test_an_error_inside_a_dict_value_points_at_the_dict():
    assert errors("destinations:\n  h:\n    type: webhook\n    url: https://h\n    headers: {X-A: [1]}\n") == [
        "collector.yaml:5:14: destinations.h.headers: expected str, got list (in one of its values)"
    ]


def test_a_missing_field_points_at_the_parent_mapping():
    assert errors("""\
        sources:
          web:
            enabled: true
        destinations:
          hook:
            type: webhook
            timeout: 5s
        """) == [
        "collector.yaml:3:5: sources.web: missing required field write_key",
        "collector.yaml:6:5: destinations.hook: missing required field url",
    ]


def test_an_empty_source_points_at_its_null_value():
    assert errors("sources:\n  web:\n") == ["collector.yaml:2:7: sources.web: missing required field write_key"]


# --- Units -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written, seconds",
    [("500ms", 0.5), ("30s", 30), ("5m", 300), ("4h", 14400), ("7d", 604800), ("1.5s", 1.5), ("12", 12),
     ("0.25", 0.25)],
)
def test_durations(written, seconds):
    config = load(f"server:\n  shutdown_timeout: {written}\n")
    assert config.server.shutdown_timeout == seconds
    assert type(config.server.shutdown_timeout) is Duration


@pytest.mark.parametrize(
    "written, size",
    [("32KB", 32_000), ("32KiB", 32 * 1024), ("1GiB", 1024**3), ("10 MB", 10_000_000), ("1.5KB", 1500),
     ("500", 500), ("0", 0), ("1b", 1)],
)
def test_sizes(written, size):
    config = load(f"storage:\n  max_bytes: {written}\n")
    assert config.storage.max_bytes == size
    assert type(config.storage.max_bytes) is ByteSize


@pytest.mark.parametrize(
    "written, message",
    [
        ("5x", "expected a duration such as '30s', '5m', '4h' or '7d', got '5x'"),
        ("-1", "a duration cannot be negative, got -1"),
        ("true", "expected a duration such as '30s' or '4h', got True"),
        ("4 hours", "expected a duration such as '30s', '5m', '4h' or '7d', got '4 hours'"),
    ],
)
def test_bad_durations(written, message):
    assert errors(f"storage:\n  retention: {written}\n") == [f"collector.yaml:2:14: storage.retention: {message}"]


@pytest.mark.parametrize(
    "written, message",
    [
        ("32XB", "expected a size such as '32KB', '500KB' or '1GiB', got '32XB'"),
        ("-5", "a size cannot be negative, got -5"),
        ("1.5", "expected a size such as '32KB', '500KB' or '1GiB', got 1.5"),
        ("lots", "expected a size such as '32KB', '500KB' or '1GiB', got 'lots'"),
    ],
)
def test_bad_sizes(written, message):
    assert errors(f"server:\n  limits:\n    max_event_bytes: {written}\n") == [
        f"collector.yaml:3:22: server.limits.max_event_bytes: {message}"
    ]


# --- Environment substitution ----------------------------------------------------------------------


def test_env_substitution(monkeypatch):
    monkeypatch.setenv("WEB_KEY", "wk_123")
    monkeypatch.setenv("HOST", "10.1.2.3")
    monkeypatch.setenv("PORT", "9000")
    config = load("""\
        server:
          listen: ${HOST}:${PORT}
        sources:
          web: {write_key: "${WEB_KEY}"}
        """)
    assert config.server.listen == "10.1.2.3:9000"
    assert config.sources["web"].write_key == "wk_123"


def test_env_default_is_used_when_unset_or_empty(monkeypatch):
    monkeypatch.delenv("UNSET_VAR", raising=False)
    monkeypatch.setenv("EMPTY_VAR", "")
    monkeypatch.setenv("SET_VAR", "given")
    config = load("""\
        sources:
          a: {write_key: "${UNSET_VAR:-fallback}"}
          b: {write_key: "${EMPTY_VAR:-fallback-2}"}
          c: {write_key: "${SET_VAR:-ignored}"}
          d: {write_key: "x${UNSET_VAR:-}y"}
        """)
    assert [s.write_key for s in config.sources.values()] == ["fallback", "fallback-2", "given", "xy"]


def test_a_doubled_dollar_escapes_a_reference(monkeypatch):
    monkeypatch.setenv("VAR", "nope")
    config = load("sources:\n  web: {write_key: 'a$${VAR}b$$c'}\n")
    assert config.sources["web"].write_key == "a${VAR}b$$c"


def test_env_values_are_converted_to_the_field_type(monkeypatch):
    monkeypatch.setenv("MAX_EVENTS", "100")
    monkeypatch.setenv("ENABLED", "false")
    monkeypatch.setenv("TIMEOUT", "4h")
    monkeypatch.setenv("MAX_BYTES", "2MiB")
    config = load("""\
        server:
          limits: {max_batch_events: "${MAX_EVENTS}", max_request_bytes: "${MAX_BYTES}"}
          shutdown_timeout: ${TIMEOUT}
        sources:
          web: {write_key: a, enabled: "${ENABLED}"}
        """)
    assert config.server.limits.max_batch_events == 100
    assert type(config.server.limits.max_batch_events) is int
    assert config.server.limits.max_request_bytes == 2 * 1024**2
    assert config.server.shutdown_timeout == 4 * 3600
    assert config.sources["web"].enabled is False


def test_a_bad_env_value_is_reported_at_the_reference(monkeypatch):
    monkeypatch.setenv("MAX_EVENTS", "lots")
    monkeypatch.setenv("ZERO", "0")
    assert errors("""\
        server:
          limits:
            max_batch_events: ${MAX_EVENTS}
        destinations:
          a: {type: file, path: /a, concurrency: "${ZERO}"}
        """) == [
        "collector.yaml:3:23: server.limits.max_batch_events: expected int, got 'lots'",
        "collector.yaml:5:42: destinations.a.concurrency: expected int >= 1, got '0'",
    ]


def test_an_unset_variable_without_default_is_an_error_at_its_scalar(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    # Only one error per unset value: the missing required write_key is not reported again.
    assert errors("""\
        sources:
          web:
            write_key: ${NO_SUCH_KEY}
        """) == [
        "collector.yaml:3:16: sources.web.write_key: environment variable NO_SUCH_KEY is not set "
        "(write ${NO_SUCH_KEY:-default} to give a default)"
    ]


def test_an_unset_variable_in_a_list_item_and_in_a_destination_type(monkeypatch):
    monkeypatch.delenv("NO_PROXY_VAR", raising=False)
    monkeypatch.delenv("NO_TYPE_VAR", raising=False)
    assert errors("""\
        server:
          trusted_proxies:
            - 10.0.0.0/8
            - ${NO_PROXY_VAR}
        destinations:
          a:
            type: ${NO_TYPE_VAR}
        """) == [
        "collector.yaml:4:7: server.trusted_proxies[1]: environment variable NO_PROXY_VAR is not set "
        "(write ${NO_PROXY_VAR:-default} to give a default)",
        "collector.yaml:7:11: destinations.a.type: environment variable NO_TYPE_VAR is not set "
        "(write ${NO_TYPE_VAR:-default} to give a default)",
    ]


@pytest.mark.parametrize("reference", ["${1ABC}", "${A B}", "${UNCLOSED"])
def test_a_malformed_reference_is_an_error(reference):
    assert errors(f"sources:\n  web: {{write_key: '{reference}'}}\n") == [
        f"collector.yaml:2:20: sources.web.write_key: invalid reference {reference!r}: write ${{NAME}}, "
        "${NAME:-default}, or $${ for a literal ${"
    ]


def test_keys_are_not_substituted(monkeypatch):
    monkeypatch.setenv("NAME", "web")
    assert errors("sources:\n  ${NAME}: {write_key: a}\n") == [
        "collector.yaml:2:3: sources.${NAME}: invalid name '${NAME}': use only letters, digits, '_' and '-'"
    ]


# --- Destinations ----------------------------------------------------------------------------------


def test_a_destination_without_type_lists_the_known_types():
    assert errors("destinations:\n  archive:\n    path: /a\n") == [
        "collector.yaml:3:5: destinations.archive: missing required field type; "
        "known destination types: file, webhook"
    ]


def test_a_destination_with_an_unknown_type_lists_the_known_types():
    assert errors("destinations:\n  hook:\n    type: webhok\n    url: https://h\n") == [
        "collector.yaml:3:11: destinations.hook.type: unknown destination type 'webhok'; known types: file, webhook"
    ]


def test_a_destination_that_is_not_a_mapping():
    assert errors("destinations:\n  hook: https://h\n") == [
        "collector.yaml:2:9: destinations.hook: expected a mapping, got a string"
    ]


def test_sources_and_destinations_must_be_mappings():
    assert errors("sources:\n  - web\ndestinations: file\n") == [
        "collector.yaml:2:3: sources: expected a mapping of source names to their settings, got a list",
        "collector.yaml:3:15: destinations: expected a mapping of destination names to their settings, "
        "got a string",
    ]


def test_the_registry_union_is_used_by_default():
    import collector.destinations.file  # noqa: F401  (the real registry entry must import)
    config = load_config_text("destinations:\n  a: {type: file, path: /tmp/x}\n")
    assert type(config.destinations["a"]).__name__ == "FileConfig"
    with pytest.raises(ConfigError) as caught:
        load_config_text("destinations:\n  a: {type: nope}\n")
    from collector.destinations.registry import destination_types

    assert caught.value.errors == [
        f"<string>:2:13: destinations.a.type: unknown destination type 'nope'; known types: "
        f"{', '.join(destination_types())}"
    ]


# --- Checks across values --------------------------------------------------------------------------


def test_two_sources_with_the_same_write_key():
    assert errors("""\
        sources:
          web: {write_key: same}
          ios: {write_key: other}
          android:
            write_key: same
        """) == ["collector.yaml:5:16: sources.android.write_key: write key already used by source web (line 2)"]


def test_a_destination_naming_an_unknown_source():
    assert errors("""\
        sources:
          web: {write_key: a}
          ios: {write_key: b}
        destinations:
          a:
            type: file
            path: /a
            sources: [web, iso]
        """) == ["collector.yaml:8:20: destinations.a.sources[1]: unknown source 'iso'; known sources: web, ios"]


def test_a_destination_naming_a_source_when_there_are_none():
    assert errors("destinations:\n  a: {type: file, path: /a, sources: [web]}\n") == [
        "collector.yaml:2:39: destinations.a.sources[0]: unknown source 'web'; no sources are configured"
    ]


def test_a_source_in_error_is_still_a_known_source():
    assert errors("""\
        sources:
          web: {write_key: 5}
        destinations:
          a: {type: file, path: /a, sources: [web]}
        """) == ["collector.yaml:2:20: sources.web.write_key: expected str, got 5"]


@pytest.mark.parametrize("name", ["bad name", "café", "a.b", "x/y"])
def test_invalid_source_and_destination_names(name):
    assert errors(f"sources:\n  {name}: {{write_key: a}}\ndestinations:\n  {name}: {{type: file, path: /a}}\n") == [
        f"collector.yaml:2:3: sources.{name}: invalid name {name!r}: use only letters, digits, '_' and '-'",
        f"collector.yaml:4:3: destinations.{name}: invalid name {name!r}: use only letters, digits, '_' and '-'",
    ]


def test_names_with_digits_dashes_and_underscores_are_fine():
    config = load("sources:\n  web-2_EU: {write_key: a}\n  '123': {write_key: b}\n")
    assert list(config.sources) == ["web-2_EU", "123"]


@pytest.mark.parametrize(
    "listen", ["127.0.0.1:8088", "0.0.0.0:1", "localhost:65535", "[::1]:8088", "[::]:80", "collector.internal:0"]
)
def test_valid_listen_addresses(listen):
    assert load(f"server:\n  listen: '{listen}'\n").server.listen == listen


@pytest.mark.parametrize(
    "listen, message",
    [
        ("8088", "expected HOST:PORT such as 127.0.0.1:8088, got '8088'"),
        (":8088", "expected HOST:PORT such as 127.0.0.1:8088, got ':8088'"),
        ("localhost", "expected HOST:PORT such as 127.0.0.1:8088, got 'localhost'"),
        ("localhost:http", "expected HOST:PORT such as 127.0.0.1:8088, got 'localhost:http'"),
        ("::1:8088", "expected HOST:PORT such as 127.0.0.1:8088, got '::1:8088' "
                     "(write an IPv6 address in brackets, e.g. [::1]:8088)"),
        ("127.0.0.1:65536", "port 65536 is out of range (0-65535)"),
        ("[::g]:8088", "'::g' is not an IPv6 address"),
        ("bad_host!:80", "'bad_host!' is not a host name or IP address"),
    ],
)
def test_invalid_listen_addresses(listen, message):
    assert errors(f"server:\n  listen: '{listen}'\n") == [f"collector.yaml:2:11: server.listen: {message}"]


@pytest.mark.parametrize("url", ["https://data.example.com", "http://localhost:8088/", "https://[::1]:8443"])
def test_valid_public_urls(url):
    assert load(f"server:\n  public_url: '{url}'\n").server.public_url == url


@pytest.mark.parametrize(
    "url", ["data.example.com", "ftp://data.example.com", "https://data.example.com/collect", "https://",
            "https://x.example.com?a=1", "https://x.example.com:99999", "https://user@x.example.com"],
)
def test_invalid_public_urls(url):
    assert errors(f"server:\n  public_url: '{url}'\n") == [
        "collector.yaml:2:15: server.public_url: expected an http(s) URL with no path, such as "
        f"https://data.example.com, got {url!r}"
    ]


def test_trusted_proxies_must_be_ips_or_cidrs():
    config = load("server:\n  trusted_proxies: [10.0.0.0/8, 10.1.2.3/8, 192.168.0.1, 'fd00::/8']\n")
    assert len(config.server.trusted_proxies) == 4
    assert errors("""\
        server:
          trusted_proxies:
            - 10.0.0.0/8
            - proxy.internal
            - 10.0.0.0/33
        """) == [
        "collector.yaml:4:7: server.trusted_proxies[1]: expected an IP address or CIDR such as 10.0.0.0/8, "
        "got 'proxy.internal'",
        "collector.yaml:5:7: server.trusted_proxies[2]: expected an IP address or CIDR such as 10.0.0.0/8, "
        "got '10.0.0.0/33'",
    ]


# --- Everything at once ----------------------------------------------------------------------------


def test_every_error_is_reported_in_one_pass_in_file_order(monkeypatch):
    monkeypatch.delenv("MISSING_URL", raising=False)
    assert errors("""\
        server:
          listen: nowhere
          limits:
            max_batch_events: 0
            max_event_bytes: 12 parsecs
          shutdown_timeout: soon
          paint: blue
        storage:
          sync: fast
        logging: {level: loud, format: xml}
        sources:
          web: {write_key: k}
          app: {write_key: k}
        destinations:
          hook:
            type: webhook
            url: ${MISSING_URL}
          archive:
            type: file
            path: /a
            sources: [web, nope]
            batch: {max_events: 0, max_wait: never}
          other: {type: carrier-pigeon}
        extra: 1
        """) == [
        "collector.yaml:2:11: server.listen: expected HOST:PORT such as 127.0.0.1:8088, got 'nowhere'",
        "collector.yaml:4:23: server.limits.max_batch_events: expected int >= 1, got 0",
        "collector.yaml:5:22: server.limits.max_event_bytes: expected a size such as '32KB', '500KB' or '1GiB', "
        "got '12 parsecs'",
        "collector.yaml:6:21: server.shutdown_timeout: expected a duration such as '30s', '5m', '4h' or '7d', "
        "got 'soon'",
        "collector.yaml:7:3: server.paint: unknown field paint",
        "collector.yaml:9:9: storage.sync: invalid value 'fast'; expected one of: full, normal",
        "collector.yaml:10:18: logging.level: invalid value 'loud'; expected one of: debug, error, info, warning",
        "collector.yaml:10:32: logging.format: invalid value 'xml'; expected one of: json, text",
        "collector.yaml:13:20: sources.app.write_key: write key already used by source web (line 12)",
        "collector.yaml:17:10: destinations.hook.url: environment variable MISSING_URL is not set "
        "(write ${MISSING_URL:-default} to give a default)",
        "collector.yaml:21:20: destinations.archive.sources[1]: unknown source 'nope'; known sources: web, app",
        "collector.yaml:22:25: destinations.archive.batch.max_events: expected int >= 1, got 0",
        "collector.yaml:22:38: destinations.archive.batch.max_wait: expected a duration such as '30s', '5m', "
        "'4h' or '7d', got 'never'",
        "collector.yaml:23:17: destinations.other.type: unknown destination type 'carrier-pigeon'; "
        "known types: file, webhook",
        "collector.yaml:24:1: extra: unknown field extra; "
        "expected one of: server, storage, logging, browser, tracking_plans, sources, destinations",
    ]


# --- YAML features ---------------------------------------------------------------------------------


def test_anchors_and_merge_keys():
    config = load("""\
        destinations:
          a: &base
            type: file
            path: /a
            batch: &batch {max_events: 50, max_wait: 5s}
          b:
            <<: *base
            path: /b
          c:
            type: webhook
            url: https://h
            batch: *batch
        """)
    assert config.destinations["a"].path == "/a"
    assert config.destinations["b"].path == "/b"
    assert config.destinations["b"].batch.max_events == 50
    assert config.destinations["c"].batch.max_wait == 5


def test_an_error_in_a_merged_value_is_reported_at_the_anchor():
    assert errors("""\
        destinations:
          a: &base
            type: file
            path: /a
            concurrency: 0
          b:
            <<: *base
            path: /b
        """) == [
        "collector.yaml:5:18: destinations.a.concurrency: expected int >= 1, got 0",
        "collector.yaml:5:18: destinations.b.concurrency: expected int >= 1, got 0",
    ]


def test_an_explicit_key_beside_a_merge_is_not_a_duplicate():
    config = load("""\
        sources:
          web: &web {write_key: a, enabled: false}
          ios:
            <<: *web
            write_key: b
        """)
    assert config.sources["ios"] == config.sources["web"].__class__(write_key="b", enabled=False)


def test_yaml_11_booleans_as_keys_stay_strings():
    config = load("sources:\n  on: {write_key: a}\n  'no': {write_key: b}\n")
    assert list(config.sources) == ["on", "no"]


def test_an_unknown_tag_is_an_error():
    assert errors("sources:\n  web: {write_key: !secret abc}\n") == [
        "collector.yaml:2:20: sources.web.write_key: could not determine a constructor for the tag '!secret'"
    ]


def test_a_recursive_alias_is_an_error():
    assert errors("server:\n  trusted_proxies: &loop [*loop]\n") == [
        "collector.yaml:2:20: server.trusted_proxies[0]: an alias refers to its own ancestor (recursive structure)"
    ]


# --- The embedded defaults -------------------------------------------------------------------------


def test_the_embedded_defaults(monkeypatch):
    monkeypatch.delenv("COLLECTOR_WRITE_KEY", raising=False)
    config = load_default_config(destination_union=FAKE_UNION)
    assert config.origin.endswith("defaults.yaml")
    assert config.server.listen == "127.0.0.1:8088"
    assert config.storage.path == "./data"
    assert list(config.sources) == ["default"]
    assert config.sources["default"].write_key == "dev_write_key"
    assert config.destinations == {"archive": FakeFileConfig(path="./data/archive")}


def test_the_embedded_write_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("COLLECTOR_WRITE_KEY", "wk_prod")
    assert load_default_config(destination_union=FAKE_UNION).sources["default"].write_key == "wk_prod"


def test_the_embedded_defaults_load_with_the_real_file_destination():
    import collector.destinations.file  # noqa: F401  (the real registry entry must import)
    config = load_default_config()
    assert config.destinations["archive"].path == "./data/archive"


def test_an_official_bundle_dir_without_the_bundle_is_an_error(tmp_path):
    text = f"browser:\n  official_bundle_dir: {tmp_path}\n"
    with pytest.raises(ConfigError) as error:
        load_config_text(text, "collector.yaml")
    assert error.value.errors == [
        f"collector.yaml:2:24: browser.official_bundle_dir: {tmp_path} has no standalone.js "
        "(expected the dist/umd directory of @segment/analytics-next)"
    ]
    (tmp_path / "standalone.js").write_text("/* bundle */")
    assert load_config_text(text, "collector.yaml").browser.official_bundle_dir == str(tmp_path)


def test_the_dedup_cap_is_a_count_of_ids_and_zero_turns_it_off():
    assert load("").storage.dedup_max_ids == 10_000_000
    assert load("storage:\n  dedup_max_ids: 0\n").storage.dedup_max_ids == 0
    assert errors("storage:\n  dedup_max_ids: -1\n") == [
        "collector.yaml:2:18: storage.dedup_max_ids: expected int >= 0, got -1"]


# --- Destination filters, mappings and triggers (the actions layer) --------------------------------


def load_actions(text: str) -> Config:
    from tests.destinations.actions.toy import ToySettings

    return load_config_text(textwrap.dedent(text), "collector.yaml", destination_union=FakeWebhookConfig | ToySettings)


def action_errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_actions(text)
    return caught.value.errors


def test_mappings_triggers_and_filters_are_compiled_at_load():
    from collector.destinations.actions.filters import compiled_filters
    from collector.destinations.actions.subscriptions import compiled_subscriptions

    config = load_actions("""\
        destinations:
          toy:
            type: toy
            api_key: k
            presets: [Track Calls]
            filters:
              - if: event = "Debug"
                drop: true
            mappings:
              - action: page
                trigger: type = "screen"
                fields: {url: {"@path": "$.name"}}
        """)
    toy = config.destinations["toy"]
    subscriptions = compiled_subscriptions(toy)
    assert [(s.name, s.action.name) for s in subscriptions] == [("Track Calls", "track"), ("mappings[0]", "page")]
    assert compiled_subscriptions(toy) is subscriptions  # kept on the config: built once
    assert compiled_filters(toy)({"type": "track", "event": "Debug"}) is None


def fql_column(text: str) -> int:
    from collector.destinations.actions.fql import FQLError, compile_fql

    with pytest.raises(FQLError) as caught:
        compile_fql(text)
    return caught.value.column


def test_every_action_problem_is_reported_in_one_pass_with_its_position():
    # An FQL error points inside the string: where the string starts + the error's column - 1.
    equals = 13 + fql_column('event == "Debug"')  # written '...' from column 13
    unclosed = 17 + fql_column('type = "page" and (event = "x"')  # written plain from column 18
    dangling = 13 + fql_column("properties.a = ")  # written "..." from column 13
    lines = action_errors("""\
        destinations:
          toy:
            type: toy
            api_key: k
            presets: [Track Calls, Pages]
            endpoint: https://proxy.example.com/toy
            filters:
              - if: 'event == "Debug"'
                drop: true
              - if: type = "track"
              - drop_properties: {"": [messageId]}
                iff: x
            mappings:
              - action: trak
                trigger: type = "track"
              - action: page
                trigger: type = "page" and (event = "x"
              - action: page
                trigger: type = "page"
                fields:
                  urll: {"@path": "$.properties.url"}
                  count: many
                  url: {"@path": "$.a..b"}
              - name: Audiense Entered
                action: add_to_list
              - name: Track Calls
                fields: {name: null}
          hook:
            type: webhook
            url: https://x
            filters:
              - if: "properties.a = "
                drop: true
        """)
    assert [line.partition(": ")[0] + ": " + line.partition(": ")[2].partition(":")[0] for line in lines] == [
        "collector.yaml:5:28: destinations.toy.presets[1]",
        "collector.yaml:6:15: destinations.toy.endpoint",
        f"collector.yaml:8:{equals}: destinations.toy.filters[0].if",
        "collector.yaml:10:9: destinations.toy.filters[1]",
        "collector.yaml:11:31: destinations.toy.filters[2].drop_properties.",
        "collector.yaml:12:9: destinations.toy.filters[2].iff",
        "collector.yaml:14:17: destinations.toy.mappings[0].action",
        f"collector.yaml:17:{unclosed}: destinations.toy.mappings[1].trigger",
        "collector.yaml:21:11: destinations.toy.mappings[2].fields.urll",
        "collector.yaml:22:18: destinations.toy.mappings[2].fields.count",
        "collector.yaml:23:26: destinations.toy.mappings[2].fields.url.@path",
        "collector.yaml:24:9: destinations.toy.mappings[3]",
        "collector.yaml:27:24: destinations.toy.mappings[4].fields.name",
        f"collector.yaml:32:{dangling}: destinations.hook.filters[0].if",  # filters on a webhook are checked too
    ]
    assert "did you mean 'Page Calls'?" in lines[0]
    assert "did you mean 'track'?" in lines[6] and "actions of toy: track, add_to_list, page" in lines[6]
    assert "did you mean 'url'?" in lines[8]
    assert "needs trigger" in lines[11] and "did you mean 'Audience Entered'?" in lines[11]


def test_a_trigger_written_with_escapes_or_on_several_lines_points_at_its_start():
    lines = action_errors("""\
        destinations:
          toy:
            type: toy
            api_key: k
            mappings:
              - action: page
                trigger: "type = \\"page\\" and"
              - action: page
                trigger: >-
                  type = "page" and
                  event == "x"
        """)
    assert [line.split(": ")[0] for line in lines] == ["collector.yaml:7:18", "collector.yaml:9:18"]


def test_a_trigger_from_an_environment_variable_points_at_its_start(monkeypatch):
    monkeypatch.setenv("TRIGGER", 'event == "x"')
    lines = action_errors("""\
        destinations:
          toy:
            type: toy
            api_key: k
            mappings:
              - {action: page, trigger: "${TRIGGER}"}
        """)
    assert [line.split(": ")[0] for line in lines] == ["collector.yaml:6:33"]


def test_a_batch_section_changes_only_the_keys_it_names_and_keeps_the_types_defaults():
    config = load_config_text(
        "destinations:\n"
        "  m: {type: mixpanel, project_token: t, batch: {max_wait: 2s}, retry: {max_backoff: 1m}}\n"
        "  w: {type: webhook, url: 'http://x', batch: {max_wait: 2s}}\n"
    )
    mixpanel, webhook = config.destinations["m"], config.destinations["w"]
    default_mixpanel = type(mixpanel)(project_token="t")
    assert mixpanel.batch.max_wait == webhook.batch.max_wait == 2
    assert (mixpanel.batch.max_events, mixpanel.batch.max_bytes) == (
        default_mixpanel.batch.max_events, default_mixpanel.batch.max_bytes)
    assert mixpanel.batch.max_events != webhook.batch.max_events  # the type's own default, not the generic one
    assert mixpanel.retry.max_backoff == 60
    assert mixpanel.retry.initial_backoff == default_mixpanel.retry.initial_backoff
