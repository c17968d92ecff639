// A form's submission: busy while the request runs, the error it ended with (shown next to its
// field or above the form), never both a stale error and a new request.
export class Submission {
	busy = $state(false);
	error = $state<unknown>(null);

	/** Runs `action`, keeping its error instead of throwing; answers whether it succeeded. */
	async run(action: () => Promise<void>): Promise<boolean> {
		this.busy = true;
		this.error = null;
		try {
			await action();
			return true;
		} catch (e) {
			this.error = e;
			return false;
		} finally {
			this.busy = false;
		}
	}
}
