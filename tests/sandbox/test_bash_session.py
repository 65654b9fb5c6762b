"""execute_bash semantics: through the Sandbox protocol (every backend), then local-only."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import pytest

from controller.agent.tools import format_command_result
from sandbox import Sandbox
from sandbox.bash_session import BashSession
from tests.sandbox.conftest import SOFT_TIMEOUT

# -- through the Sandbox protocol -----------------------------------------------------------


def test_cwd_persists(sandbox: Sandbox) -> None:
    first = sandbox.run("cd /tmp")
    assert first.exit_code == 0
    assert first.cwd == "/tmp"
    result = sandbox.run("pwd")
    assert result.output == "/tmp\n"
    assert result.cwd == "/tmp"


def test_starts_in_workdir(sandbox: Sandbox) -> None:
    result = sandbox.run("pwd")
    assert result.output.strip() == sandbox.workdir
    assert result.cwd == sandbox.workdir


def test_exported_variables_and_functions_persist(sandbox: Sandbox) -> None:
    sandbox.run("export GREETING=hello")
    sandbox.run('shout() { echo "$1!"; }')
    assert sandbox.run('shout "$GREETING"').output == "hello!\n"
    assert sandbox.run("bash -c 'echo $GREETING'").output == "hello\n"


def test_exit_codes_are_reported(sandbox: Sandbox) -> None:
    assert sandbox.run("true").exit_code == 0
    assert sandbox.run("false").exit_code == 1
    assert sandbox.run("bash -c 'exit 7'").exit_code == 7
    assert sandbox.run("(exit 4)").exit_code == 4
    # $? stays the user's: the prompt machinery does not reset it.
    sandbox.run("false")
    assert sandbox.run("echo $?").output == "1\n"


def test_output_without_final_newline(sandbox: Sandbox) -> None:
    assert sandbox.run("printf abc").output == "abc"
    assert sandbox.run("echo abc").output == "abc\n"
    assert sandbox.run("true").output == ""


def test_multiline_command_and_heredoc(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "cat > notes.txt <<'EOF'\nit's \"quoted\" $HOME `x`\n\tindented\nEOF\n"
        "for i in 1 2; do\n  echo line $i\ndone\ncat notes.txt"
    )
    assert result.exit_code == 0
    assert result.output == 'line 1\nline 2\nit\'s "quoted" $HOME `x`\n\tindented\n'


def test_long_command_is_sent_whole(sandbox: Sandbox) -> None:
    # Far beyond the 4095-byte line limit of a terminal in canonical mode.
    body = ("0123456789 'quote' \\ $dollar ünïcode\n" * 3000).rstrip("\n")
    result = sandbox.run(f"cat <<'EOF' | wc -c\n{body}\nEOF")
    assert result.exit_code == 0
    assert int(result.output) == len(body.encode()) + 1


def test_control_characters_in_a_command_are_not_keys(sandbox: Sandbox) -> None:
    result = sandbox.run("printf '%s' 'a\x03b\x04c\x1a' | od -An -c")
    assert result.exit_code == 0
    assert result.output.split() == ["a", "003", "b", "004", "c", "032"]


def test_syntax_error_does_not_hang(sandbox: Sandbox) -> None:
    result = sandbox.run("echo 'unterminated")
    assert result.exit_code == 2
    assert "unexpected EOF" in result.output
    assert sandbox.run("echo fine").output == "fine\n"


def _fetch_until_done(sandbox: Sandbox, *, is_input: bool = True) -> tuple[str, int]:
    """Fetch with empty commands until the command ends (a loaded machine may need a few)."""
    outputs = []
    for _ in range(10):
        result = sandbox.run("", is_input=is_input)
        outputs.append(result.output)
        if not result.still_running:
            return "".join(outputs), result.exit_code
    raise AssertionError("the command did not finish")


def test_soft_timeout_then_fetch_the_rest(sandbox: Sandbox) -> None:
    first = sandbox.run("echo start; sleep 0.8; echo end")
    assert first.still_running
    assert first.exit_code == -1
    assert first.output == "start\n"
    assert f"no new output after {SOFT_TIMEOUT:g} seconds" in first.note
    # Only what is new since the previous call, and the final exit code.
    assert _fetch_until_done(sandbox) == ("end\n", 0)


def test_empty_command_while_running_fetches_output(sandbox: Sandbox) -> None:
    assert sandbox.run("sleep 0.8; echo done").still_running
    assert _fetch_until_done(sandbox, is_input=False) == ("done\n", 0)


def test_ctrl_c_interrupts(sandbox: Sandbox) -> None:
    assert sandbox.run("sleep 100").still_running
    result = sandbox.run("C-c", is_input=True)
    assert not result.still_running
    assert result.exit_code == 130
    assert sandbox.run("echo alive").output == "alive\n"


def test_interactive_input(sandbox: Sandbox) -> None:
    waiting = sandbox.run("read x; echo got $x")
    assert waiting.still_running
    result = sandbox.run("hello", is_input=True)
    assert result.output == "got hello\n"
    assert result.exit_code == 0


def test_ctrl_d_ends_input(sandbox: Sandbox) -> None:
    assert sandbox.run("cat > typed.txt").still_running
    assert sandbox.run("some text", is_input=True).still_running
    assert sandbox.run("C-d", is_input=True).exit_code == 0
    assert sandbox.read_file("typed.txt") == b"some text\n"


def test_new_command_refused_while_one_runs(sandbox: Sandbox) -> None:
    assert sandbox.run("sleep 100").still_running
    refused = sandbox.run("touch should-not-exist")
    assert refused.still_running
    assert refused.exit_code == -1
    assert "NOT executed" in refused.note
    assert "is_input" in refused.note
    # The running command was not disturbed: it is still there to interrupt.
    assert sandbox.run("C-c", is_input=True).exit_code == 130
    assert sandbox.path_kind("should-not-exist") == "missing"


def test_command_after_the_previous_one_finished_runs(sandbox: Sandbox) -> None:
    assert sandbox.run("sleep 0.7; echo first").still_running
    time.sleep(0.5)  # it finishes while nobody is reading
    result = sandbox.run("echo second")
    assert result.output == "second\n"
    assert result.exit_code == 0
    assert "exit code 0" in result.note
    assert "first" in result.note


def test_hard_timeout_leaves_the_command_running(sandbox: Sandbox) -> None:
    result = sandbox.run("echo partial; sleep 30; echo never", timeout=1)
    assert result.timed_out and result.still_running
    assert result.exit_code == -1
    assert result.output == "partial\n"
    assert result.note.startswith("[The command timed out after 1.0 seconds. You may wait")
    assert sandbox.run("C-c", is_input=True).exit_code == 130
    assert sandbox.run("echo next").output == "next\n"


def test_a_second_ctrl_c_kills_a_job_that_ignores_it(sandbox: Sandbox) -> None:
    assert sandbox.run("trap '' INT; sleep 30", timeout=0.3).still_running
    assert sandbox.run("C-c", is_input=True).still_running  # ignored, as OpenHands leaves it
    killed = sandbox.run("C-c", is_input=True)
    assert not killed.still_running
    assert killed.exit_code == 137
    assert "did not stop on C-c, so it was killed" in killed.note
    assert sandbox.run("trap - INT; echo ok").output == "ok\n"


def test_huge_output_is_cut_in_the_middle(sandbox: Sandbox) -> None:
    result = sandbox.run("seq 1 2000000")
    assert result.exit_code == 0
    assert len(result.output) < 31_000
    assert result.output.startswith("1\n2\n3\n")
    assert result.output.endswith("1999999\n2000000\n")
    assert "\n[... Observation truncated due to length ...]\n" in result.output


def test_binary_output_does_not_crash(sandbox: Sandbox) -> None:
    result = sandbox.run("head -c 100000 /dev/urandom")
    assert result.exit_code == 0
    assert isinstance(result.output, str)
    assert "\x00" not in result.output
    assert sandbox.run("echo after").output == "after\n"


def test_exit_ends_the_shell_and_next_command_gets_a_fresh_one(sandbox: Sandbox) -> None:
    sandbox.run("cd /tmp && export GONE=1")
    result = sandbox.run("exit 3")
    assert result.exit_code == 3
    assert "shell exited" in result.note
    after = sandbox.run('pwd; echo "[$GONE]"')
    assert after.exit_code == 0
    assert after.output == f"{sandbox.workdir}\n[]\n"
    assert "fresh shell" in after.note


def test_input_without_running_command_is_an_error(sandbox: Sandbox) -> None:
    # OpenHands openhands/runtime/utils/bash.py: its words for both cases.
    for text in ("hello", "C-c"):
        result = sandbox.run(text, is_input=True)
        assert (result.exit_code, result.note) == (-1, "")
        assert result.output == "ERROR: No previous running command to interact with."
    empty = sandbox.run("", is_input=True)
    assert empty.output == "ERROR: No previous running command to retrieve logs from."
    assert sandbox.run("echo ok").output == "ok\n"  # the shell was not touched


def test_empty_command_when_idle(sandbox: Sandbox) -> None:
    """OpenHands tests/runtime/test_bash.py::test_empty_command_errors (and the unit test
    of the same name, which compares the whole content)."""
    result = sandbox.run("   ")
    assert result.exit_code == -1
    assert result.output == "ERROR: No previous running command to retrieve logs from."
    assert format_command_result(result) == result.output


def test_fake_marker_in_output_is_not_taken_for_the_prompt(sandbox: Sandbox) -> None:
    result = sandbox.run("echo '###RH-0123456789abcdef###0###/x###'; echo real")
    assert result.output == "###RH-0123456789abcdef###0###/x###\nreal\n"


def test_redirecting_the_shell_output_does_not_hide_the_prompt(sandbox: Sandbox) -> None:
    assert sandbox.run("exec 3>&1 1>/dev/null; echo hidden").output == ""
    assert sandbox.run("exec 1>&3 3>&-; echo visible").output == "visible\n"


def test_prompt_changes_do_not_leak_into_output(sandbox: Sandbox) -> None:
    sandbox.run("PS1='(venv) $ '; PS2='> '")
    assert sandbox.run("echo one\necho two").output == "one\ntwo\n"


# A repository script trying every place the end marker's secret could be read from: its
# environment, the shell's environment and command line, `set`, an xtrace log of the shell.
_FORGER = r"""
{ env; set; cat /proc/self/environ /proc/$PPID/environ /proc/$PPID/cmdline trace.log; } \
  2>/dev/null | tr '\0' '\n' | grep -oE '[0-9a-f]{16}' | sort -u > guesses
echo "$RUNHANDS_SANDBOX_ID" >> guesses
for n in $(cat guesses) 0123456789abcdef; do printf '\n###RH-%s###0###/forged###\n' "$n"; done
echo "guesses: $(sort -u guesses | wc -l)"
sleep 0.2
echo after-forgery
exit 3
"""


def test_a_script_cannot_forge_the_end_of_its_command(sandbox: Sandbox) -> None:
    sandbox.write_file("forge.sh", _FORGER.encode())
    # Exported by mistake (`set -a`), traced into a file the script reads (`set -x`): still
    # nothing it can use. The trace holds the previous commands' markers, already spent.
    sandbox.run("set -a; set -x; exec 2>trace.log")
    sandbox.run("true")
    result = sandbox.run("bash forge.sh")
    assert result.exit_code == 3
    assert result.output.rstrip().endswith("after-forgery")
    assert "###RH-0123456789abcdef###0###/forged###" in result.output
    guesses = int(result.output.split("guesses: ")[1].split()[0])
    assert guesses >= 2  # the sandbox tag and a spent marker, at least
    # The next observation is the next command's own: nothing was shifted.
    assert sandbox.run("set +x +a; echo next").output == "next\n"
    assert sandbox.run("echo $((6 * 7))").output == "42\n"


def test_exec_bash_is_recovered_in_the_same_directory(sandbox: Sandbox) -> None:
    sandbox.run("mkdir -p sub && cd sub && export GONE=1")
    result = sandbox.run("exec bash")
    assert not result.still_running
    assert "replaced by `bash` (exec)" in result.note
    assert f"fresh shell was started in {sandbox.workdir}/sub" in result.note
    after = sandbox.run('pwd; echo "[$GONE]"')
    assert after.output == f"{sandbox.workdir}/sub\n[]\n"
    assert after.exit_code == 0


def test_exec_bash_in_a_deleted_directory_is_recovered_in_the_workdir(sandbox: Sandbox) -> None:
    sandbox.run("mkdir gone && cd gone && rmdir ../gone")
    result = sandbox.run("exec bash")
    assert f"fresh shell was started in {sandbox.workdir}:" in result.note
    assert sandbox.run("pwd").output == f"{sandbox.workdir}\n"


@pytest.mark.parametrize("nested", ["bash", "sh -i", "bash --norc"])
def test_a_nested_shell_is_stopped_and_the_session_kept(sandbox: Sandbox, nested: str) -> None:
    sandbox.run("export KEPT=yes")
    result = sandbox.run(nested)
    assert not result.still_running
    assert f"`{nested}` started a nested interactive shell" in result.note
    assert sandbox.run("echo $KEPT").output == "yes\n"


def test_a_nested_shell_in_a_running_command_is_stopped_at_the_next_command(
    sandbox: Sandbox,
) -> None:
    # It is typed in while a command runs, so it only shows when the model moves on.
    assert sandbox.run("read line; $line").still_running
    sandbox.run("bash", is_input=True)
    result = sandbox.run("echo mine")
    assert result.output == "mine\n"
    assert result.exit_code == 0


@pytest.mark.parametrize(
    "change",
    [
        "PROMPT_COMMAND='echo hi'",
        "unset PROMPT_COMMAND",
        "PROMPT_COMMAND+=('echo hi')",
        "unset -f __rh_prompt",
        "__rh_prompt() { :; }",
        "PS1='$ '; PS0='> '; PS2=",
    ],
)
def test_changing_the_prompt_does_not_wedge_the_session(sandbox: Sandbox, change: str) -> None:
    result = sandbox.run(change)
    assert not result.still_running
    assert sandbox.run("echo mine").output == "mine\n"
    assert sandbox.run("false").exit_code == 1


def test_a_shell_deaf_to_ctrl_c_is_restarted(sandbox: Sandbox) -> None:
    sandbox.run("cd /tmp")
    assert sandbox.run("trap '' INT; read x").still_running
    result = sandbox.run("C-c", is_input=True)
    assert not result.still_running
    assert "did not come back to its prompt after C-c" in result.note
    assert "fresh shell was started in /tmp" in result.note
    assert sandbox.run("pwd").output == "/tmp\n"


def test_a_program_that_replaced_the_shell_goes_when_a_command_comes(sandbox: Sandbox) -> None:
    waiting = sandbox.run("exec sleep 100")
    assert waiting.still_running  # it may be what the model wants to watch
    result = sandbox.run("echo mine")
    assert result.output == "mine\n"
    assert "replaced by `sleep 100` (exec)" in result.note


@pytest.mark.parametrize(
    "command", ["(sleep 100)", "bash -c 'sleep 100'", "echo 'sleep 100' > s.sh; bash < s.sh"]
)
def test_busy_shells_are_not_taken_for_wedged_ones(sandbox: Sandbox, command: str) -> None:
    assert sandbox.run(command).still_running
    refused = sandbox.run("echo no")
    assert "NOT executed" in refused.note
    assert sandbox.run("C-c", is_input=True).exit_code == 130


# -- local only: process handling on the host ------------------------------------------------


def _alive(pid: int) -> bool:
    """True when pid exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_dead(pid: int, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not _alive(pid)


@pytest.fixture
def bash(tmp_path: Path):
    session = BashSession(str(tmp_path), soft_timeout=SOFT_TIMEOUT)
    session.start()
    yield session
    session.close()


def _pids(output: str) -> list[int]:
    """The numbers printed as pid=N (job-control notices also contain pids)."""
    return [int(word[4:]) for word in output.split() if word.startswith("pid=")]


def test_close_kills_background_jobs(bash: BashSession) -> None:
    pids = _pids(
        bash.run(
            "sleep 1000 & echo pid=$!; nohup sleep 1001 >/dev/null 2>&1 & echo pid=$!; "
            "(sleep 1002 & echo pid=$!)"
        ).output
    )
    shell = bash.pid
    assert len(pids) == 3 and shell is not None
    assert all(_alive(pid) for pid in pids)
    bash.close()
    assert all(_wait_dead(pid) for pid in [*pids, shell])
    bash.close()  # idempotent
    assert bash.pid is None


def test_close_during_a_running_command(bash: BashSession) -> None:
    result = bash.run("sleep 1000 & echo pid=$!; sh -c 'echo pid=$$; exec sleep 1001'")
    assert result.still_running
    pids = _pids(result.output)
    assert len(pids) == 2
    bash.close()
    assert all(_wait_dead(pid) for pid in pids)


def test_garbage_collection_closes_the_session(tmp_path: Path) -> None:
    session = BashSession(str(tmp_path), soft_timeout=SOFT_TIMEOUT)
    session.start()
    job = _pids(session.run("sleep 1000 & echo pid=$!").output)[0]
    shell = session.pid
    assert shell is not None
    del session
    gc.collect()
    assert _wait_dead(job)
    assert _wait_dead(shell)


def test_shell_is_reaped_after_exit(bash: BashSession) -> None:
    shell = bash.pid
    assert shell is not None
    bash.run("exit")
    assert not os.path.exists(f"/proc/{shell}")  # reaped, not a zombie


def test_round_trip_is_fast(bash: BashSession) -> None:
    bash.run("true")
    started = time.perf_counter()
    for _ in range(100):
        assert bash.run("true").exit_code == 0
    per_call = (time.perf_counter() - started) / 100
    assert per_call < 0.01, f"{per_call * 1000:.1f} ms per trivial command"


def test_fifty_megabytes_keep_memory_bounded(bash: BashSession) -> None:
    result = bash.run("head -c 50000000 /dev/zero | tr '\\0' a; echo; echo END")
    assert result.exit_code == 0
    assert result.output.endswith("a\nEND\n")
    assert len(result.output) < 31_000
    assert "[... Observation truncated due to length ...]" in result.output


def test_env_is_passed_and_terminal_is_dumb(tmp_path: Path) -> None:
    session = BashSession(str(tmp_path), soft_timeout=SOFT_TIMEOUT, env={"RH_TEST_VAR": "yes"})
    try:
        out = session.run('echo "$RH_TEST_VAR $TERM $PAGER $GIT_PAGER"; tty; set -o').output
    finally:
        session.close()
    assert out.startswith("yes dumb cat cat\n/dev/pts/")
    assert "monitor        \ton" in out  # job control is active


def test_a_given_environment_replaces_the_hosts(tmp_path, monkeypatch) -> None:
    from sandbox.local import LocalSandbox

    monkeypatch.setenv("HOST_ONLY_SECRET", "hidden-value")
    sandbox = LocalSandbox(str(tmp_path), env={"PATH": "/usr/bin:/bin", "GIVEN": "yes"})
    sandbox.start()
    try:
        result = sandbox.run("echo ${HOST_ONLY_SECRET:-absent} $GIVEN")
    finally:
        sandbox.close()
    assert result.output.strip() == "absent yes"
