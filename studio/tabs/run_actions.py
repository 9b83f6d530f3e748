"""The Runs tab's actions on the picked run (Stop, Resume, Continue for N more minutes, Delete, Duplicate): only those
that apply to its status show, and the picker follows the run an action makes."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from pipelines.store import RunStore

# What a person can do with a run of each status. A completed run is not resumed as it is (that would silently give
# it a whole new time budget): it is continued for as many more minutes as the person says.
APPLY = {"queued": {"stop", "delete"}, "running": {"stop", "delete"}, "completed": {"continue", "delete"},
         "stopped": {"resume", "delete"}, "failed": {"resume", "delete"}, "interrupted": {"resume", "delete"}}
DEFAULT_MORE_MINUTES = 5


@dataclass
class Actions:
    stop: gr.Button
    resume: gr.Button
    more_minutes: gr.Number
    continue_: gr.Button
    delete: gr.Button

    def shown(self, status: str | None) -> dict:
        """Updates showing only the actions that apply to a run of `status` (None: no run picked, none shows)."""
        ok = APPLY.get(status, set())
        return {self.stop: gr.update(visible="stop" in ok), self.resume: gr.update(visible="resume" in ok),
                self.more_minutes: gr.update(visible="continue" in ok), self.continue_: gr.update(visible="continue" in ok),
                self.delete: gr.update(visible="delete" in ok)}

    def components(self) -> list:
        return [self.stop, self.resume, self.more_minutes, self.continue_, self.delete]


def buttons() -> Actions:
    """The action buttons, laid out in the current row (hidden until a run is picked)."""
    return Actions(
        gr.Button("Stop", elem_id="stop-run", visible=False),
        gr.Button("Resume", elem_id="resume-run", visible=False),
        gr.Number(DEFAULT_MORE_MINUTES, minimum=0.1, label="Continue for (minutes)", elem_id="more-minutes",
                  visible=False, min_width=120, scale=0),
        gr.Button("Continue training", elem_id="continue-run", visible=False),
        gr.Button("Delete", variant="stop", elem_id="delete-run", visible=False),
    )


def default_run(store: RunStore) -> str | None:
    """The run the tab opens on: the running one (the newest, if several), else the newest."""
    rows = store.list_runs(("name", "status"))  # newest first
    running = [r["name"] for r in rows if r["status"] == "running"]
    return (running or [r["name"] for r in rows] or [None])[0]


def wire(studio, run: gr.Dropdown, action: gr.Markdown, actions: Actions, edits: gr.Code, duplicate_btn: gr.Button) -> None:
    store: RunStore = studio.manager.store
    quiet = {"api_visibility": "private", "show_progress": "hidden"}
    delete_answer = gr.Textbox(visible=False, elem_id="delete-answer")  # set by the delete button's js (CONFIRM_DELETE)

    def act(fn):
        def handler(name, *args):
            if not name:
                return "Pick a run first."
            try:
                return fn(name, *args)
            except (KeyError, ValueError) as exc:
                return f"**{exc}**"
        return handler

    def names():
        return [r["name"] for r in store.list_runs(("name",))]

    actions.stop.click(act(studio.manager.stop), run, action, **quiet)
    actions.resume.click(act(studio.manager.resume), run, action, **quiet)
    actions.continue_.click(act(lambda name, minutes: studio.manager.resume(name, more_minutes=minutes)),
                            [run, actions.more_minutes], action, **quiet)

    def delete(name, answer):
        if not answer:  # cancelled (or nothing picked): nothing changes
            return gr.update(), gr.update()
        message = act(lambda n: studio.manager.delete(n, stop_running=answer == "stop"))(name)
        listed = names()
        return message, gr.update(choices=listed, value=name if name in listed else None)

    actions.delete.click(delete, [run, delete_answer], [action, run], js=CONFIRM_DELETE,
                         **quiet)  # a cancelled delete shows nothing, not even a timer

    def duplicate(name, text):
        made = {}
        message = act(lambda n: f"Queued **{made.setdefault('name', studio.manager.duplicate(n, text))}**")(name)
        if "name" not in made:
            return message, gr.update()
        return message, gr.update(choices=names(), value=made["name"])  # the picker follows the new run

    duplicate_btn.click(duplicate, [run, edits], [action, run], **quiet)


# Asks before deleting, and says so when the run is running (the progress bar carries the picked run's status).
CONFIRM_DELETE = """(name, answer) => {
    if (!name) return [name, ''];
    const status = document.querySelector('#run-progress [data-status]')?.dataset.status;
    if (status === 'running')
        return [name, confirm(name + ' is running. Stop it, then delete it and all its files?') ? 'stop' : ''];
    return [name, confirm('Delete run ' + name + ' and all its files?') ? 'delete' : ''];
}"""
