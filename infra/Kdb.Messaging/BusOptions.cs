namespace Kdb.Messaging;

/// <summary>Which MassTransit transport a host uses (configuration section <c>Bus</c>).</summary>
public sealed class BusOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Bus";

    /// <summary><c>inmemory</c> (the embedded default: provisioning runs inside the control plane) or <c>rabbitmq</c>.</summary>
    public string Transport { get; set; } = "inmemory";

    /// <summary>RabbitMQ broker host (with <c>rabbitmq</c>).</summary>
    public string RabbitMqHost { get; set; } = "127.0.0.1";

    /// <summary>RabbitMQ AMQP port.</summary>
    public int RabbitMqPort { get; set; } = 5672;

    /// <summary>RabbitMQ virtual host.</summary>
    public string RabbitMqVirtualHost { get; set; } = "/";

    /// <summary>RabbitMQ user.</summary>
    public string RabbitMqUsername { get; set; } = "guest";

    /// <summary>RabbitMQ password.</summary>
    public string RabbitMqPassword { get; set; } = "guest";

    /// <summary>True when the RabbitMQ transport is selected.</summary>
    public bool IsRabbitMq => string.Equals(Transport, "rabbitmq", StringComparison.OrdinalIgnoreCase);
}
